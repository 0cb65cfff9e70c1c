import numpy as np
import pytest
import torch

import plstm_graph as pg
from plstm_graph.ops.plstm import PARALLEL_MAX_EDGES, auto_backend, compiled, plstm_dense
from plstm_graph.ops.plstm.blocks import blocks_of, pack
from plstm_graph.testing import (PLSTM_INPUT_NAMES, RING_SMILES, assert_plstm_matches_reference,
                                 chain, dense_dag, disjoint_union, grid_dag, molecule,
                                 random_plstm_inputs, random_tree, star)


def graphs():
    gen = torch.Generator().manual_seed(0)
    yield "chain", chain(12), "given"
    yield "star", star(8), "given"
    yield "tree", random_tree(20, gen), "given"
    for smiles in RING_SMILES[1:4]:
        yield smiles, molecule(smiles), "index"
    yield "grid", grid_dag(4, 5), "given"
    yield "dense", dense_dag(7), "given"
    yield "isolated", (torch.tensor([[0, 2, 2], [2, 5, 6]]), 9), "given"
    yield "no edges", (torch.zeros(2, 0, dtype=torch.long), 5), "given"


#: The compiled sweep where this machine can build it (tests/ops/test_plstm_compiled.py fails
#: when a C compiler is there and the build does not work).
COMPILED = pytest.param("compiled", marks=pytest.mark.skipif(
    not compiled.available(), reason=f"compiled sweep unavailable: {compiled.unavailable()}"))

GRAPHS = list(graphs())
IDS = [name for name, *_ in GRAPHS]


@pytest.mark.parametrize("name,graph,orientation", GRAPHS, ids=IDS)
@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("backend", ["levels", "parallel", "mixed", COMPILED, "auto", "dense"])
def test_backend_matches_reference(name, graph, orientation, mode, backend):
    g = pg.prepare_dag(*graph, mode=mode, orientation=orientation)
    assert_plstm_matches_reference(g, backend, heads=2, key_dim=3, value_dim=5)


@pytest.mark.parametrize("heads,key_dim,value_dim", [(1, 1, 1), (3, 4, 2), (4, 8, 8)])
@pytest.mark.parametrize("recompute", [False, True])
def test_levels_shapes_and_recompute(heads, key_dim, value_dim, recompute):
    g = pg.prepare_dag(*molecule(RING_SMILES[-1]), mode="P")
    assert_plstm_matches_reference(g, "levels", heads, key_dim, value_dim, recompute=recompute)
    assert_plstm_matches_reference(g.reverse(), "levels", heads, key_dim, value_dim, seed=3,
                                   recompute=recompute)


def test_batch_of_many_graphs_matches_reference():
    gen = torch.Generator().manual_seed(2)
    union = disjoint_union([*(random_tree(n, gen) for n in [1, 6, 0, 9, 4, 12]), chain(90)])
    g = pg.prepare_dag(*union, orientation="given", mode="D")
    assert_plstm_matches_reference(g, "levels")
    assert_plstm_matches_reference(g, "parallel")
    assert_plstm_matches_reference(g, "parallel", recompute=True)
    if compiled.available():
        assert_plstm_matches_reference(g, "compiled")
    # The chain is not padded together with the small trees.
    assert sorted(block.count for block in blocks_of(g)) == [1, 4]


def test_packing_cuts_where_padding_costs_more_than_a_block():
    nodes, edges = np.array([5, 30, 5, 6, 29]), np.array([4, 33, 4, 5, 28])
    runs = pack(nodes, edges, block_cost=200)
    assert [sorted(run.tolist()) for run in runs] == [[0, 2, 3], [1, 4]]
    assert len(pack(nodes, edges, block_cost=0)) == 4  # one block per distinct size
    assert len(pack(nodes, edges, block_cost=1e9)) == 1
    assert pack(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)) == []


@pytest.mark.parametrize("backend", ["levels", "parallel", "mixed", COMPILED, "reference", "dense"])
@pytest.mark.parametrize("mode", ["P", "D"])
def test_gradcheck(backend, mode):
    g = pg.prepare_dag(*molecule("C1CC2CCC1C2"), mode=mode)
    inputs = random_plstm_inputs(g, 2, 2, 3, generator=torch.Generator().manual_seed(0))
    inputs = [x.requires_grad_() for x in inputs]
    assert torch.autograd.gradcheck(lambda *xs: pg.plstm(*xs, g, backend=backend), inputs)


@pytest.fixture
def python_backends(monkeypatch):
    """``auto`` as on a machine without the compiled sweep (on CPU it comes first otherwise)."""
    monkeypatch.setattr(compiled, "available", lambda: False)


def test_auto_picks_parallel_for_small_graphs_only(python_backends):
    assert auto_backend(pg.prepare_dag(*molecule(RING_SMILES[-1]))) == "parallel"
    big = pg.prepare_dag(*chain(PARALLEL_MAX_EDGES + 2), orientation="given")
    assert auto_backend(big) == "levels"
    # Edgeless nodes beside a large graph leave nothing for the parallel form.
    assert auto_backend(pg.prepare_dag(*disjoint_union([chain(PARALLEL_MAX_EDGES + 2),
                                                        (torch.zeros(2, 0, dtype=torch.long), 3)]),
                                       orientation="given")) == "levels"


def mixed_batch():
    """Small graphs (trees, molecules, an isolated node) around two too large for ``parallel``:
    a chain and a grid (several paths per node, so D-mode prunes)."""
    gen = torch.Generator().manual_seed(4)
    given = [random_tree(9, gen), chain(PARALLEL_MAX_EDGES + 3), star(5),
             (torch.zeros(2, 0, dtype=torch.long), 1), grid_dag(12, 13)]
    union = disjoint_union([*given, *(molecule(s) for s in RING_SMILES[1:3])])
    assert grid_dag(12, 13)[0].size(1) > PARALLEL_MAX_EDGES
    return union


@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("recompute", [False, True])
def test_mixed_batch_runs_small_graphs_in_parallel_and_large_ones_by_levels(mode, recompute,
                                                                            python_backends):
    from plstm_graph.ops.plstm.mixed import split_of

    g = pg.prepare_dag(*mixed_batch(), mode=mode)  # by index: the molecules are undirected
    assert auto_backend(g) == "mixed"
    split = split_of(g)
    large = (chain(PARALLEL_MAX_EDGES + 3), grid_dag(12, 13))
    assert split.large.graph.num_edges == sum(edges.size(1) for edges, _ in large)
    assert auto_backend(split.small.graph) == "parallel"
    assert auto_backend(split.large.graph) == "levels"
    assert_plstm_matches_reference(g, "mixed", heads=2, key_dim=3, value_dim=2,
                                   recompute=recompute)
    assert_plstm_matches_reference(g, "auto", heads=1, key_dim=2, value_dim=3, seed=1)


def test_registered_backend_is_dispatched_and_preferred_by_auto():
    # The extension point the grid backend uses: a name in BACKENDS, and a predicate that
    # makes auto take it for the graphs it suits (here: a LineGraph subclass).
    from plstm_graph.ops.plstm import AUTO_PREFERENCES, BACKENDS, plstm_levels, register_backend

    class ToyLineGraph(pg.LineGraph):
        pass

    seen = []

    def toy(q, k, v, source, transition, mark, direct, graph, recompute):
        seen.append(type(graph))
        return plstm_levels(q, k, v, source, transition, mark, direct, graph, recompute)

    plain = pg.prepare_dag(*chain(6), orientation="given")
    toy_graph = ToyLineGraph(plain.edge_index, plain.edge_id, plain.line_index, plain.edge_level,
                             plain.num_nodes)
    try:
        register_backend("toy", toy, auto_for=lambda g: isinstance(g, ToyLineGraph))
        with pytest.raises(ValueError, match="already registered"):
            register_backend("toy", toy)
        # Registered last, asked first: before the compiled sweep that takes any CPU graph.
        assert auto_backend(toy_graph) == "toy" and auto_backend(plain) != "toy"
        assert_plstm_matches_reference(toy_graph, "auto")
        assert seen and set(seen) == {ToyLineGraph}
        assert_plstm_matches_reference(plain, "toy")
    finally:
        BACKENDS.pop("toy", None)
        AUTO_PREFERENCES.pop("toy", None)
    with pytest.raises(ValueError, match="backend must be one of"):
        assert_plstm_matches_reference(plain, "toy")


def test_no_edges_is_the_direct_term():
    g = pg.prepare_dag(torch.zeros(2, 0, dtype=torch.long), 3)
    q, k, v, s, t, m, d = random_plstm_inputs(g, 2, 3, 4)
    out = pg.plstm(q, k, v, s, t, m, d, g)
    torch.testing.assert_close(out, d[..., None] * (q * k).sum(-1, keepdim=True) * v)


@pytest.mark.parametrize("backend", ["levels", "parallel", "mixed", COMPILED, "reference", "dense"])
def test_nan_is_not_hidden(backend):
    g = pg.prepare_dag(*chain(5), orientation="given")
    inputs = random_plstm_inputs(g, 1, 2, 2)
    inputs[2][0, 0, 0] = float("nan")  # v at the chain's first node flows to every later node
    out = pg.plstm(*inputs, g, backend=backend)
    assert bool(out[:, 0, 0].isnan().all())
    inputs = random_plstm_inputs(g, 1, 2, 2)
    inputs[4][2] = float("nan")  # a transition: whatever it feeds must be NaN
    out = pg.plstm(*[x.requires_grad_() for x in inputs], g, backend=backend)
    assert bool(out[4:].isnan().all())
    assert not bool(out[:3].isnan().any())


@pytest.mark.parametrize("index,shape,message", [
    (0, (4, 2, 3), r"q must have shape \[5, \*, \*\]"),
    (1, (5, 2, 4), r"k must have shape \[5, 2, 3\]"),
    (2, (5, 3, 4), r"v must have shape \[5, 2, \*\]"),
    (3, (3, 2), r"source must have shape \[4, 2\]"),
    (4, (4, 2), r"transition must have shape \[3, 2\]"),
    (5, (4, 1), r"mark must have shape \[4, 2\]"),
    (6, (5,), r"direct must have shape \[5, 2\]"),
])
def test_mismatched_shapes_name_the_argument(index, shape, message):
    g = pg.prepare_dag(*chain(5), orientation="given")
    inputs = random_plstm_inputs(g, 2, 3, 4)
    inputs[index] = torch.randn(shape, dtype=torch.float64)
    with pytest.raises(ValueError, match=message):
        pg.plstm(*inputs, g)


def test_bad_backend_and_graph():
    g = pg.prepare_dag(*chain(3), orientation="given")
    inputs = random_plstm_inputs(g, 1, 1, 1)
    with pytest.raises(ValueError, match="backend must be one of"):
        pg.plstm(*inputs, g, backend="cuda")
    with pytest.raises(ValueError, match="graph must be a LineGraph"):
        pg.plstm(*inputs, g.edge_index)
    inputs[0] = inputs[0].long()
    with pytest.raises(ValueError, match="q must be a floating-point tensor"):
        pg.plstm(*inputs, g)


# --- Stability: gates at their bounds, float32, long paths --------------------------------


def impulse(g: pg.LineGraph, transition: torch.Tensor):
    """Response to one unit source on the first edge (q = k = v = 1, M = 1, D = 0)."""
    n, e = g.num_nodes, g.num_edges
    ones = torch.ones(n, 1, 1)
    source = torch.zeros(e, 1)
    source[0] = 1.0
    return pg.plstm(ones, ones, ones, source, transition, torch.ones(e, 1), torch.zeros(n, 1), g)


def bound_transitions(g: pg.LineGraph) -> torch.Tensor:
    """P: every line node's outgoing transitions sum to exactly 1; D: |T| = 1 (tanh's limit)."""
    ones = torch.ones(g.num_line_edges, 1)
    if g.mode == "D":
        return ones
    outflow = torch.zeros(g.num_edges, 1).index_add(0, g.line_index[0], ones)
    return ones / outflow[g.line_index[0]]


@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("graph", [chain(10_000), grid_dag(64, 64)], ids=["chain10k", "grid64"])
def test_stable_at_the_bound(mode, graph):
    g = pg.prepare_dag(*graph, mode=mode, orientation="given")
    out = impulse(g, bound_transitions(g))
    assert bool(torch.isfinite(out).all())
    # One unit of input never becomes more than one unit in any cell, however far it travels
    # (P: transitions split it; D: a multitree has one path), and a node reads its in-edges.
    in_degree = int(torch.bincount(g.edge_index[1]).max())
    assert float(out.abs().max()) <= in_degree * (1.0 + 1e-5)
    # All sources on: finite, and bounded by the number of upstream sources (no blow-up).
    n, e = g.num_nodes, g.num_edges
    q, k, v = (torch.rand(n, 2, 4) for _ in range(3))
    full = pg.plstm(q, k, v, torch.ones(e, 2), bound_transitions(g).expand(-1, 2).contiguous(),
                    torch.ones(e, 2), torch.ones(n, 2), g)
    assert bool(torch.isfinite(full).all()) and float(full.abs().max()) <= 4 * n


def test_unnormalised_grid_blows_up():
    # Why the bound matters: T = 1 on every full line-graph edge counts paths, which grow
    # exponentially on a grid: C(126, 63) ~ 6e36 at the far corner of 64 x 64, near float32's max.
    g = pg.prepare_dag(*grid_dag(64, 64), mode="P", orientation="given")
    out = impulse(g, torch.ones(g.num_line_edges, 1))
    assert float(out.abs().max()) > 1e36


def test_dense_is_the_gating_matrix_form():
    g = pg.prepare_dag(*dense_dag(5), mode="P", orientation="given")
    inputs = random_plstm_inputs(g, 1, 2, 2)
    torch.testing.assert_close(plstm_dense(*inputs, g), pg.plstm(*inputs, g, backend="reference"))
    assert PLSTM_INPUT_NAMES[4] == "transition"
