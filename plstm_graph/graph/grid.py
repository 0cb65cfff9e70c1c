"""Chains and 2D grids of patches as DAG line graphs, built directly from their shape.

A ``height x width`` grid (nodes numbered row-major, ``r * width + c``, as image patches are)
becomes a DAG by pointing every edge away from one ``corner``: from ``"top-left"`` edges run
right and down; the three other corners mirror that. ``count`` equal grids form one batch
exactly as PyG batches them: grid ``b`` holds nodes ``b * height * width + ...`` and the
``b``-th run of edges and line edges.

Edge order, per grid: the ``height * (width - 1)`` horizontal edges row by row, left to right,
then the ``(height - 1) * width`` vertical edges row by row (the same undirected order for
every corner, so reversing a grid's edges gives the opposite corner's grid, edge for edge).

The line graph, levels and D-mode multitree equal what :func:`~plstm_graph.prepare_dag` with
``orientation="given"`` builds from the same edges, but come from closed forms instead of
topological sweeps and the sequential pruning walk. In corner coordinates ``(r, c)`` (the
corner at ``(0, 0)``, edges pointing to larger ``r`` or ``c``) an edge leaving node ``(r, c)``
has level ``r + c`` in both modes, and SPEC's pruning rule keeps a *comb*:

* every line edge leaving a node's horizontal input (it comes first in the edge order, so it
  is visited first and always kept);
* a node's vertical input continues only in column ``c = 0`` (where it is the only input) and
  at ``(1, 1)`` (the only node whose two inputs have disjoint ancestries); everywhere else it
  shares the ancestor ``(0, 0) -> (0, 1)`` or ``(0, 0) -> (1, 0)`` with the horizontal input
  and is dropped, so interior vertical edges are read at their target but lead nowhere.

So information travels along rows, enters each row from column 0 (and row 1 from ``(1, 1)``),
and moves down one row per vertical edge. The official 2D pLSTM's D-mode keeps a different
multitree (straight transitions plus one turn, SPEC section 8).
"""
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .line_graph import MODES, LineGraph
from .validation import check_one_of, check_positive_int

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
OPPOSITE = {"top-left": "bottom-right", "top-right": "bottom-left",
            "bottom-left": "top-right", "bottom-right": "top-left"}


@dataclass(eq=False)
class GridLineGraph(LineGraph):
    """A :class:`LineGraph` of ``count`` equal ``height x width`` grids whose edges point away
    from ``corner``; kernels recognise it by type and use the grid's fixed structure.

    Built by :func:`grid_line_graph` / :func:`chain_line_graph`; see the module docstring for
    the node numbering and edge order.
    """

    height: int = 1
    width: int = 1
    count: int = 1
    corner: str = "top-left"

    def reverse(self) -> "GridLineGraph":
        """The reversed DAG: the opposite corner's grid, same mode and edge order (equal to
        :meth:`LineGraph.reverse`, without the generic sweeps)."""
        return grid_line_graph(self.height, self.width, OPPOSITE[self.corner], self.mode,
                               self.count, device=self.edge_index.device)

    def to(self, device) -> "GridLineGraph":
        return replace(self, edge_index=self.edge_index.to(device), edge_id=self.edge_id.to(device),
                       line_index=self.line_index.to(device), edge_level=self.edge_level.to(device))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(height={self.height}, width={self.width}, "
                f"count={self.count}, corner={self.corner!r}, mode={self.mode!r})")


def corner_coordinates(height: int, width: int, corner: str, device=None) -> tuple[Tensor, Tensor]:
    """``(r, c)`` of every node of one grid (``[height * width]`` each, row-major node order)
    measured from ``corner``: the corner is ``(0, 0)`` and every edge points to larger ``r`` or
    larger ``c``."""
    rows = torch.arange(height, device=device).repeat_interleave(width)
    cols = torch.arange(width, device=device).repeat(height)
    if corner.startswith("bottom"):
        rows = height - 1 - rows
    if corner.endswith("right"):
        cols = width - 1 - cols
    return rows, cols


def _check_grid_args(height, width, corner, mode, count):
    check_positive_int(height, "height")
    check_positive_int(width, "width")
    check_positive_int(count, "count")
    check_one_of(corner, "corner", CORNERS)
    check_one_of(mode, "mode", MODES)


def _one_grid_edges(height: int, width: int, corner: str, device=None) -> Tensor:
    """``[2, E]`` edges of one grid in the module's edge order."""
    ids = torch.arange(height * width, device=device).view(height, width)
    horizontal = torch.stack([ids[:, :-1].reshape(-1), ids[:, 1:].reshape(-1)])
    vertical = torch.stack([ids[:-1].reshape(-1), ids[1:].reshape(-1)])
    if corner.endswith("right"):
        horizontal = horizontal.flip(0)
    if corner.startswith("bottom"):
        vertical = vertical.flip(0)
    return torch.cat([horizontal, vertical], dim=1)


def _batched(per_grid: Tensor, count: int, step: int) -> Tensor:
    """``count`` copies of ``per_grid`` (``[..., X]``), copy ``b`` shifted by ``b * step``,
    concatenated along the last dimension."""
    shifts = torch.arange(count, device=per_grid.device) * step
    return (per_grid.unsqueeze(-2) + shifts.view(-1, 1)).flatten(-2)


def grid_edge_index(height: int, width: int, corner: str = "top-left", count: int = 1,
                    device=None) -> Tensor:
    """``[2, count * E]`` edges of ``count`` grids pointing away from ``corner`` (the order of
    the module docstring), e.g. for a dataset's ``Data.edge_index``."""
    _check_grid_args(height, width, corner, "P", count)
    return _batched(_one_grid_edges(height, width, corner, device), count, height * width)


def _one_grid_lines(height: int, width: int, corner: str, mode: str, edges: Tensor):
    """Line edges ``[2, L]`` (sorted by ``e_in``, then ``e_out``) and edge levels ``[E]`` of
    one grid, from the corner coordinates of every edge's endpoints."""
    num_nodes, num_edges = height * width, edges.size(1)
    rows, cols = corner_coordinates(height, width, corner, edges.device)
    vertical = rows[edges[1]] > rows[edges[0]]  # else horizontal (column grows)

    # Each node's (at most one) horizontal and vertical input and output; -1 where missing.
    def slots(end: Tensor, is_vertical: bool) -> Tensor:
        slot = torch.full((num_nodes,), -1, dtype=torch.long, device=edges.device)
        mask = vertical if is_vertical else ~vertical
        slot[end[mask]] = torch.arange(num_edges, device=edges.device)[mask]
        return slot

    inputs = torch.stack([slots(edges[1], False), slots(edges[1], True)], 1)  # [N, 2]
    outputs = torch.stack([slots(edges[0], False), slots(edges[0], True)], 1)
    e_in = inputs[:, :, None].expand(-1, 2, 2)  # [node, input kind, output kind]
    e_out = outputs[:, None, :].expand(-1, 2, 2)
    keep = (e_in >= 0) & (e_out >= 0)
    if mode == "D":  # the comb of the module docstring
        vertical_continues = (cols == 0) | ((rows == 1) & (cols == 1))
        keep[:, 1] &= vertical_continues[:, None]
    e_in, e_out = e_in[keep], e_out[keep]
    order = torch.argsort(e_in * num_edges + e_out)
    level = rows[edges[0]] + cols[edges[0]]
    return torch.stack([e_in[order], e_out[order]]), level


def grid_line_graph(height: int, width: int, corner: str = "top-left", mode: str = "P",
                    count: int = 1, device=None) -> GridLineGraph:
    """The :class:`GridLineGraph` of ``count`` ``height x width`` grids with edges pointing
    away from ``corner``; equal to ``prepare_dag(grid_edge_index(...), count * height * width,
    mode, orientation="given")`` (same edge order, line edges, levels and D-mode multitree).

    Args:
        height, width: grid shape (rows and columns of patches).
        corner: ``"top-left"`` (edges right and down), ``"top-right"``, ``"bottom-left"`` or
            ``"bottom-right"``.
        mode: ``"P"`` (full line graph) or ``"D"`` (SPEC's multitree: the comb described in
            the module docstring).
        count: number of grids in the batch (node, edge and line-edge ids offset per grid).
    """
    _check_grid_args(height, width, corner, mode, count)
    edges = _one_grid_edges(height, width, corner, device)
    lines, level = _one_grid_lines(height, width, corner, mode, edges)
    num_edges = edges.size(1)
    return GridLineGraph(
        edge_index=_batched(edges, count, height * width),
        edge_id=torch.arange(count * num_edges, device=edges.device),
        line_index=_batched(lines, count, num_edges),
        edge_level=level.repeat(count),
        num_nodes=count * height * width, mode=mode,
        height=height, width=width, count=count, corner=corner)


def chain_line_graph(length: int, mode: str = "P", count: int = 1, reverse: bool = False,
                     device=None) -> GridLineGraph:
    """``count`` chains ``0 -> 1 -> ... -> length - 1`` (``reverse=True``: pointing the other
    way), as ``1 x length`` grids."""
    return grid_line_graph(1, length, "top-right" if reverse else "top-left", mode, count,
                           device=device)
