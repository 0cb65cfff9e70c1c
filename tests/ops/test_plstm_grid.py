import pytest
import torch

import plstm_graph as pg
from plstm_graph.graph.grid import CORNERS, chain_line_graph, grid_edge_index, grid_line_graph
from plstm_graph.ops.plstm import auto_backend, compiled
from plstm_graph.ops.plstm import grid as grid_module
from plstm_graph.ops.plstm.grid import plstm_grid_reference
from plstm_graph.ops.plstm.grid_chunk import plstm_grid_chunk
from plstm_graph.testing import (PLSTM_INPUT_NAMES, assert_plstm_matches_reference,
                                 assert_same_outputs_and_grads, random_plstm_inputs)

SHAPES = [(1, 1), (1, 7), (6, 1), (2, 2), (3, 5), (6, 4)]


@pytest.mark.parametrize("height,width", SHAPES)
@pytest.mark.parametrize("corner", CORNERS)
@pytest.mark.parametrize("mode", ["P", "D"])
def test_grid_matches_reference(height, width, corner, mode):
    g = grid_line_graph(height, width, corner, mode, count=2)
    assert_plstm_matches_reference(g, "grid", heads=2, key_dim=3, value_dim=4)


@pytest.mark.parametrize("heads,key_dim,value_dim", [(1, 1, 1), (3, 4, 2), (4, 8, 8)])
@pytest.mark.parametrize("recompute", [False, True])
def test_heads_dims_and_recompute(heads, key_dim, value_dim, recompute):
    for mode in ("P", "D"):
        g = grid_line_graph(5, 4, "bottom-left", mode, count=3)
        assert_plstm_matches_reference(g, "grid", heads, key_dim, value_dim, recompute=recompute)


@pytest.mark.parametrize("min_inner_columns", [1, 10 ** 9])
@pytest.mark.parametrize("mode", ["P", "D"])
def test_both_memory_orders_of_the_sweep(min_inner_columns, mode, monkeypatch):
    # The columns (grids x heads) innermost, or each [K, V] block contiguous: same results.
    monkeypatch.setattr(grid_module, "MIN_INNER_COLUMNS", min_inner_columns)
    for recompute in (False, True):
        g = grid_line_graph(4, 5, "top-right", mode, count=3)
        assert_plstm_matches_reference(g, "grid", heads=2, key_dim=3, value_dim=4,
                                       recompute=recompute)


def test_grid_with_many_columns_matches_levels():
    g = grid_line_graph(5, 6, "bottom-left", "D", count=8)  # 16 columns: stored innermost
    assert grid_module._columns_inner(g.count * 2)
    inputs = random_plstm_inputs(g, 2, 3, 2, generator=torch.Generator().manual_seed(3))
    assert_same_outputs_and_grads(lambda *xs: pg.plstm(*xs, g, backend="grid"),
                                  lambda *xs: pg.plstm(*xs, g, backend="levels"),
                                  inputs, names=PLSTM_INPUT_NAMES)


def test_grid_matches_levels_on_a_larger_grid():
    g = grid_line_graph(9, 11, "top-right", "P", count=2)
    inputs = random_plstm_inputs(g, 2, 3, 5, generator=torch.Generator().manual_seed(4))
    assert_same_outputs_and_grads(lambda *xs: pg.plstm(*xs, g, backend="grid"),
                                  lambda *xs: pg.plstm(*xs, g, backend="levels"),
                                  inputs, names=PLSTM_INPUT_NAMES)


@pytest.mark.parametrize("height,width,chunk", [(1, 6, 2), (5, 1, 4), (6, 7, 2), (9, 5, 4)])
@pytest.mark.parametrize("mode", ["P", "D"])
def test_chunkwise_matches_reference(height, width, chunk, mode):
    for corner in ("top-left", "bottom-right"):
        g = grid_line_graph(height, width, corner, mode, count=2)
        inputs = random_plstm_inputs(g, 2, 3, 4, generator=torch.Generator().manual_seed(5))
        # Against the sweep (itself equal to the reference, above): the reference loop is slow.
        assert_same_outputs_and_grads(lambda *xs: plstm_grid_chunk(*xs, g, chunk=chunk),
                                      lambda *xs: pg.plstm(*xs, g, backend="grid"),
                                      inputs, names=PLSTM_INPUT_NAMES)
    small = grid_line_graph(min(height, 3), min(width, 5), "top-right", mode)
    assert_plstm_matches_reference(small, "grid-chunk", heads=3, key_dim=2, value_dim=5)


def test_chains():
    for reverse in (False, True):
        assert_plstm_matches_reference(chain_line_graph(9, "P", count=2, reverse=reverse), "grid")


@pytest.mark.parametrize("corner", CORNERS)
def test_readable_2d_reference_matches_dag_reference(corner):
    g = grid_line_graph(4, 3, corner, "D", count=2)
    inputs = random_plstm_inputs(g, 2, 3, 4, generator=torch.Generator().manual_seed(1))
    assert_same_outputs_and_grads(lambda *xs: plstm_grid_reference(*xs, g),
                                  lambda *xs: pg.plstm(*xs, g, backend="reference"),
                                  inputs, names=PLSTM_INPUT_NAMES)


def test_auto_takes_grid_for_grid_line_graphs_only(monkeypatch):
    monkeypatch.setattr(compiled, "available", lambda: False)  # on CPU it comes first otherwise
    g = grid_line_graph(4, 4, "top-left", "P", count=2)
    assert auto_backend(g) == "grid"
    generic = pg.prepare_dag(grid_edge_index(4, 4, count=2), 32, orientation="given")
    assert auto_backend(generic) != "grid"


def test_grid_backend_needs_a_grid_line_graph():
    g = pg.prepare_dag(grid_edge_index(3, 3), 9, orientation="given")
    inputs = random_plstm_inputs(g, 1, 2, 2)
    with pytest.raises(ValueError, match="graph must be a GridLineGraph"):
        pg.plstm(*inputs, g, backend="grid")


@pytest.mark.parametrize("mode", ["P", "D"])
def test_nan_reaches_what_it_reaches_in_the_reference(mode):
    g = grid_line_graph(5, 6, "top-right", mode)
    inputs = random_plstm_inputs(g, 2, 3, 3, generator=torch.Generator().manual_seed(2))
    inputs[1][13, 0, 1] = float("nan")  # one node's key, one head
    want = pg.plstm(*inputs, g, backend="reference")
    assert 0 < int(want.isnan().sum()) < want.numel()
    for backend in ("grid", "grid-chunk"):
        got = pg.plstm(*inputs, g, backend=backend)
        torch.testing.assert_close(got, want, atol=1e-10, rtol=0, equal_nan=True)


@pytest.mark.parametrize("backend", ["grid", "grid-chunk"])
def test_half_precision_and_autocast(backend):
    g = grid_line_graph(5, 6, "top-left", "P", count=2)
    inputs = random_plstm_inputs(g, 2, 4, 4, generator=torch.Generator().manual_seed(3))
    want = pg.plstm(*inputs, g, backend="reference")
    for dtype, atol in ((torch.bfloat16, 0.1), (torch.float16, 0.02)):
        half = [x.to(dtype).requires_grad_() for x in inputs]
        out = pg.plstm(*half, g, backend=backend)
        out.float().sum().backward()
        assert out.dtype == dtype and half[4].grad.dtype == dtype
        torch.testing.assert_close(out.double(), want, atol=atol, rtol=0.05)
    single = [x.float().requires_grad_() for x in inputs]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pg.plstm(*single, g, backend=backend)
        out.sum().backward()
    assert out.dtype == torch.float32 and single[0].grad.dtype == torch.float32
    torch.testing.assert_close(out.double(), want, atol=1e-5, rtol=1e-5)
