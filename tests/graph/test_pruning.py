import networkx as nx
import pytest
import torch

import plstm_graph as pg
from plstm_graph.testing import (RING_SMILES, assert_multitree, dense_dag, grid_dag, molecule,
                                 random_dag)


def prune_literally(full: pg.LineGraph) -> set:
    """SPEC's D-mode rule, transcribed with networkx reachability on the kept graph."""
    rank = {e: r for r, e in enumerate(sorted(range(full.num_edges),
                                              key=lambda e: (int(full.edge_level[e]), e)))}
    preds = {e: [] for e in range(full.num_edges)}
    for a, b in full.line_index.t().tolist():
        preds[b].append(a)
    kept = nx.DiGraph()
    kept.add_nodes_from(range(full.num_edges))
    for cur in sorted(range(full.num_edges), key=rank.get):
        for pred in sorted(preds[cur], key=rank.get):
            reachers = {pred} | nx.ancestors(kept, pred)
            if not any(nx.has_path(kept, a, cur) for a in reachers):
                kept.add_edge(pred, cur)
    return set(kept.edges())


def cases():
    gen = torch.Generator().manual_seed(1)
    yield "grid", grid_dag(4, 4)
    yield "dense", dense_dag(6)
    for i in range(3):
        yield f"random{i}", random_dag(10, 25, gen)
    for smiles in RING_SMILES:
        yield smiles, molecule(smiles)


@pytest.mark.parametrize("name,graph", list(cases()), ids=[n for n, _ in cases()])
def test_pruning_follows_the_rule_and_gives_a_multitree(name, graph):
    edge_index, n = graph
    orientation = "index" if name in RING_SMILES else "given"
    full = pg.prepare_dag(edge_index, n, mode="P", orientation=orientation)
    pruned = pg.prepare_dag(edge_index, n, mode="D", orientation=orientation)
    assert torch.equal(pruned.edge_index, full.edge_index)
    got = {tuple(p) for p in pruned.line_index.t().tolist()}
    assert got == prune_literally(full)
    assert got <= {tuple(p) for p in full.line_index.t().tolist()}
    assert_multitree(pruned.line_index, pruned.num_edges)


def test_pruning_a_diamond():
    # 0->1, 0->2, 1->3, 2->3, 3->4: two line paths from (0->1)/(0->2) merge at (3->4)...
    edge_index = torch.tensor([[0, 0, 1, 2, 3], [1, 2, 3, 3, 4]])
    pruned = pg.prepare_dag(edge_index, 5, mode="D", orientation="given")
    # ...they come from different line nodes, so both are kept: a multitree allows merging.
    assert pruned.line_index.t().tolist() == [[0, 2], [1, 3], [2, 4], [3, 4]]
    # With a shared ancestor line node (-1->0), the second merge would be a second path.
    edge_index = torch.tensor([[5, 0, 0, 1, 2, 3], [0, 1, 2, 3, 3, 4]])
    pruned = pg.prepare_dag(edge_index, 6, mode="D", orientation="given")
    assert pruned.line_index.t().tolist() == [[0, 1], [0, 2], [1, 3], [2, 4], [3, 5]]


def test_pruning_is_assert_multitree_sensitive():
    full = pg.prepare_dag(*grid_dag(3, 3), orientation="given")
    with pytest.raises(AssertionError, match="not a multitree"):
        assert_multitree(full.line_index, full.num_edges)
