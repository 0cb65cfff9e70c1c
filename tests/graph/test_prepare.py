import networkx as nx
import pytest
import torch

import plstm_graph as pg
from plstm_graph.testing import (RING_SMILES, chain, dense_dag, grid_dag, molecule, random_dag,
                                 random_tree, star)


def families():
    gen = torch.Generator().manual_seed(0)
    yield "chain", chain(9)
    yield "star", star(7)
    yield "tree", random_tree(15, gen)
    yield "grid", grid_dag(4, 5)
    yield "dense", dense_dag(6)
    yield "random", random_dag(12, 30, gen)
    for smiles in RING_SMILES[:3]:  # oriented by index: a DAG with the molecule's rings
        edge_index, n = molecule(smiles)
        yield smiles, (pg.prepare_dag(edge_index, n).edge_index, n)
    yield "isolated", (torch.tensor([[0, 2], [2, 5]]), 8)
    yield "no edges", (torch.zeros(2, 0, dtype=torch.long), 4)


FAMILIES = list(families())
IDS = [name for name, _ in FAMILIES]


def dag_of(edge_index, num_nodes):
    dag = nx.MultiDiGraph()
    dag.add_nodes_from(range(num_nodes))
    for e, (u, v) in enumerate(edge_index.t().tolist()):
        dag.add_edge(u, v, key=e)
    return dag


@pytest.mark.parametrize("name,graph", FAMILIES, ids=IDS)
def test_index_orientation(name, graph):
    edge_index, n = graph
    undirected = torch.cat([edge_index, edge_index.flip(0)], dim=1)  # both directions, as PyG
    g = pg.prepare_dag(undirected, n)
    src, dst = g.edge_index
    assert bool((src < dst).all())
    assert torch.equal(g.edge_index, undirected[:, g.edge_id].sort(0).values)
    assert g.edge_id.tolist() == sorted(g.edge_id.tolist())  # first occurrences, in input order
    want = {tuple(sorted(p)) for p in edge_index.t().tolist()}
    assert {tuple(p) for p in g.edge_index.t().tolist()} == want


def test_self_loops_dropped_and_duplicates_merged():
    edge_index = torch.tensor([[0, 1, 1, 1, 2, 0, 2], [1, 0, 1, 0, 1, 1, 1]])
    g = pg.prepare_dag(edge_index, 3)
    assert g.edge_index.tolist() == [[0, 1], [1, 2]]
    assert g.edge_id.tolist() == [0, 4]


@pytest.mark.parametrize("name,graph", FAMILIES, ids=IDS)
@pytest.mark.parametrize("mode", ["P", "D"])
def test_line_graph_and_levels_match_networkx(name, graph, mode):
    edge_index, n = graph
    g = pg.prepare_dag(edge_index, n, mode=mode, orientation="given")
    assert torch.equal(g.edge_index, edge_index)
    assert torch.equal(g.edge_id, torch.arange(edge_index.size(1)))
    full = pg.prepare_dag(edge_index, n, mode="P", orientation="given")
    line = nx.line_graph(dag_of(edge_index, n))
    want = {(a[2], b[2]) for a, b in line.edges()}
    assert {tuple(p) for p in full.line_index.t().tolist()} == want
    assert full.line_index.size(1) == len(want)
    # Levels: longest path to each line node in g's own line graph.
    kept = nx.DiGraph()
    kept.add_nodes_from(range(g.num_edges))
    kept.add_edges_from(g.line_index.t().tolist())
    level = {}
    for e in nx.topological_sort(kept):
        level[e] = max((level[p] + 1 for p in kept.predecessors(e)), default=0)
    assert g.edge_level.tolist() == [level[e] for e in range(g.num_edges)]


@pytest.mark.parametrize("name,graph", FAMILIES, ids=IDS)
@pytest.mark.parametrize("mode", ["P", "D"])
def test_reverse(name, graph, mode):
    edge_index, n = graph
    g = pg.prepare_dag(edge_index, n, mode=mode, orientation="given")
    r = g.reverse()
    assert r.mode == mode and torch.equal(r.edge_index, edge_index.flip(0))
    assert torch.equal(r.edge_id, g.edge_id)
    direct = pg.prepare_dag(edge_index.flip(0), n, mode=mode, orientation="given")
    assert torch.equal(r.line_index, direct.line_index)
    assert torch.equal(r.reverse().line_index, g.line_index)
    if mode == "P":  # the reversed DAG's line graph is the flipped line graph
        assert {tuple(p) for p in r.line_index.t().tolist()} == \
            {tuple(p) for p in g.line_index.flip(0).t().tolist()}


def test_batch_equals_graphs_one_by_one():
    graphs = [graph for _, graph in FAMILIES]
    offsets = [0]
    for _, n in graphs:
        offsets.append(offsets[-1] + n)
    union = torch.cat([ei + off for (ei, _), off in zip(graphs, offsets)], dim=1)
    for mode in "PD":
        batch = pg.prepare_dag(union, offsets[-1], mode=mode, orientation="given")
        edge_offset, line_parts, level_parts = 0, [], []
        for (ei, n), off in zip(graphs, offsets):
            single = pg.prepare_dag(ei, n, mode=mode, orientation="given")
            line_parts.append(single.line_index + edge_offset)
            level_parts.append(single.edge_level)
            edge_offset += single.num_edges
        assert torch.equal(batch.line_index, torch.cat(line_parts, dim=1))
        assert torch.equal(batch.edge_level, torch.cat(level_parts))
        assert batch.num_levels == max(int(lv.max()) + 1 for lv in level_parts if lv.numel())


def test_num_levels_is_depth_not_edge_count():
    g = pg.prepare_dag(*grid_dag(8, 8), orientation="given")
    assert g.num_edges == 112 and g.num_levels == 14


@pytest.mark.parametrize("bad,match", [
    (torch.tensor([0, 1]), r"edge_index must have shape \[2, E\]"),
    (torch.zeros(3, 2, dtype=torch.long), r"edge_index must have shape \[2, E\]"),
    (torch.tensor([[0.0], [1.0]]), "edge_index must have an integer dtype"),
    (torch.tensor([[0], [5]]), "edge_index refers to node 5, out of range for num_nodes=3"),
    (torch.tensor([[-1], [0]]), "edge_index refers to node -1"),
    ([[0], [1]], "edge_index must be a torch.Tensor"),
])
def test_bad_edge_index(bad, match):
    with pytest.raises(ValueError, match=match):
        pg.prepare_dag(bad, 3)


def test_bad_arguments():
    edge_index = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="mode must be one of"):
        pg.prepare_dag(edge_index, 2, mode="X")
    with pytest.raises(ValueError, match="orientation must be one of"):
        pg.prepare_dag(edge_index, 2, orientation="random")
    with pytest.raises(ValueError, match="num_nodes must be a non-negative int"):
        pg.prepare_dag(edge_index, -1)


@pytest.mark.parametrize("edges,on_cycle", [
    ([[0, 1, 2], [1, 2, 0]], {0, 1, 2}),
    ([[3, 0, 1, 2, 2, 4], [0, 1, 2, 1, 4, 5]], {1, 2}),  # cycle 1 <-> 2 behind node 0
    ([[0, 1], [1, 1]], {1}),  # self-loop
])
def test_cycle_names_a_node_on_it(edges, on_cycle):
    with pytest.raises(ValueError, match="not acyclic") as info:
        pg.prepare_dag(torch.tensor(edges), 6, orientation="given")
    node = int(str(info.value).split("node ")[1].split()[0])
    assert node in on_cycle


@pytest.mark.parametrize("mode", ["P", "D"])
def test_reverse_argument_equals_reverse_method(mode):
    edge_index, n = molecule(RING_SMILES[-1])
    direct = pg.prepare_dag(edge_index, n, mode=mode, reverse=True)
    via_method = pg.prepare_dag(edge_index, n, mode=mode).reverse()
    for name in ("edge_index", "edge_id", "line_index", "edge_level"):
        assert torch.equal(getattr(direct, name), getattr(via_method, name)), name


def test_cached_builds_once_per_graph():
    g = pg.prepare_dag(*chain(5), orientation="given")
    calls = []

    def build(graph):
        calls.append(graph)
        return object()

    first = g.cached("thing", build)
    assert g.cached("thing", build) is first and calls == [g]
    moved = g.to("cpu")  # a new graph: its own cache
    assert moved.cached("thing", build) is not first and calls == [g, moved]
