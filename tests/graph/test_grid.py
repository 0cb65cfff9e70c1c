import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

import plstm_graph as pg
from plstm_graph.graph.grid import (CORNERS, GridLineGraph, chain_line_graph, grid_edge_index,
                                    grid_line_graph)
from plstm_graph.testing import assert_multitree, chain

FIELDS = ("edge_index", "edge_id", "line_index", "edge_level")
SHAPES = [(1, 1), (1, 6), (6, 1), (2, 2), (3, 4), (5, 6), (7, 3)]


def assert_same_line_graph(got, want):
    assert (got.num_nodes, got.mode) == (want.num_nodes, want.mode)
    for field in FIELDS:
        assert torch.equal(getattr(got, field), getattr(want, field)), field


@pytest.mark.parametrize("height,width", SHAPES)
@pytest.mark.parametrize("corner", CORNERS)
@pytest.mark.parametrize("mode", ["P", "D"])
def test_grid_equals_prepare_dag(height, width, corner, mode):
    for count in (1, 3):
        g = grid_line_graph(height, width, corner, mode, count)
        want = pg.prepare_dag(grid_edge_index(height, width, corner, count), count * height * width,
                              mode=mode, orientation="given")
        assert isinstance(g, GridLineGraph)
        assert (g.height, g.width, g.count, g.corner) == (height, width, count, corner)
        assert_same_line_graph(g, want)
        # The reversed DAG is the opposite corner's grid, equal to the generic reverse.
        assert isinstance(g.reverse(), GridLineGraph)
        assert_same_line_graph(g.reverse(), want.reverse())


def test_d_mode_is_the_documented_comb():
    height, width = 5, 6
    g = grid_line_graph(height, width, "top-left", "D")
    assert_multitree(g.line_index, g.num_edges)
    src, dst = g.edge_index
    horizontal = dst - src == 1
    e_in, e_out = g.line_index
    vertical_in = ~horizontal[e_in]
    # A vertical input continues (both ways where they exist) only in column 0 and at (1, 1).
    continues = {divmod(int(n), width) for n in src[e_out[vertical_in]]}
    assert continues == {(r, 0) for r in range(1, height)} | {(1, 1)}
    # Every horizontal input continues in both directions where they exist: P keeps them all.
    full = grid_line_graph(height, width, "top-left", "P")
    assert int((~vertical_in).sum()) == int(horizontal[full.line_index[0]].sum())
    # Levels stay the corner distance r + c of the source in both modes.
    assert torch.equal(g.edge_level, src // width + src % width)


def test_chain_equals_prepare_dag():
    for mode in ("P", "D"):
        g = chain_line_graph(9, mode, count=2)
        edges, n = chain(9)
        union = torch.cat([edges, edges + n], dim=1)
        assert_same_line_graph(g, pg.prepare_dag(union, 2 * n, mode=mode, orientation="given"))
        backwards = chain_line_graph(9, mode, count=2, reverse=True)
        assert_same_line_graph(backwards, g.reverse())


def test_batches_like_any_graph():
    """PrepareDAG on one grid per Data, batched by PyG's DataLoader, gives the grid batch."""
    transform = pg.PrepareDAG(modes=("P", "D"), reverse=True, orientation="given")
    graphs = [transform(Data(x=torch.randn(12, 2), edge_index=grid_edge_index(3, 4)))
              for _ in range(3)]
    batch = next(iter(DataLoader(graphs, batch_size=3)))
    for mode in ("P", "D"):
        for reverse, corner in ((False, "top-left"), (True, "bottom-right")):
            assert_same_line_graph(grid_line_graph(3, 4, corner, mode, count=3),
                                   batch.line_graph(mode, reverse))


def test_to_keeps_the_grid():
    g = grid_line_graph(3, 2, "bottom-left", "D", count=2).to("cpu")
    assert isinstance(g, GridLineGraph)
    assert (g.height, g.width, g.count, g.corner) == (3, 2, 2, "bottom-left")
    assert "height=3" in repr(g)


@pytest.mark.parametrize("kwargs,name", [
    (dict(height=0, width=3), "height"), (dict(height=2, width=-1), "width"),
    (dict(height=2, width=2, count=0), "count"), (dict(height=2, width=2, corner="left"), "corner"),
    (dict(height=2, width=2, mode="X"), "mode"), (dict(height=2.0, width=2), "height"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        grid_line_graph(**kwargs)
