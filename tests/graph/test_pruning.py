import networkx as nx
import pytest
import torch

import plstm_graph as pg
from plstm_graph.testing import (RING_SMILES, assert_multitree, chain, dense_dag, grid_dag,
                                 molecule, random_dag)


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


def chains_that_merge(length: int):
    """Two ``length``-edge chains leave node 1 (below a root 0), merge at one node, go on."""
    a = list(range(1, length + 2))
    b = [1, *range(length + 2, 2 * length + 1), length + 1]
    end = 2 * length + 1
    pairs = [(0, 1), *zip(a, a[1:]), *zip(b, b[1:]), (length + 1, end), (end, end + 1)]
    return torch.tensor(pairs).t(), end + 2


@pytest.mark.parametrize("length", [1, 2, 7, 40])
def test_pruning_of_long_single_predecessor_stretches(length):
    # Stretches of single-predecessor line nodes only link to their predecessor; the merge
    # must still see the shared ancestor (0 -> 1) at the far end of both stretches.
    full = pg.prepare_dag(*chains_that_merge(length), mode="P", orientation="given")
    pruned = pg.prepare_dag(*chains_that_merge(length), mode="D", orientation="given")
    assert {tuple(p) for p in pruned.line_index.t().tolist()} == prune_literally(full)
    assert pruned.num_line_edges == full.num_line_edges - 1  # the second merge edge goes
    assert_multitree(pruned.line_index, pruned.num_edges)


def test_a_long_chain_keeps_every_line_edge():
    edge_index, n = chain(20_000)
    pruned = pg.prepare_dag(edge_index, n, mode="D", orientation="given")
    assert pruned.num_line_edges == n - 2
    assert torch.equal(pruned.edge_level, torch.arange(n - 1))
