"""The level-by-level plan the ``levels`` kernel follows, derived once per line graph."""
from dataclasses import dataclass

import torch
from torch import Tensor

from ...graph.line_graph import LineGraph


@dataclass(frozen=True, eq=False)
class Sweep:
    """Line edges grouped by the level of one endpoint: group ``l`` is ``ptr[l]:ptr[l+1]``.

    ``local`` is the grouping endpoint's position within its level's slice of the edge order
    (so a kernel writes into ``cells[edge_ptr[l]:edge_ptr[l+1]]`` only), ``other`` is the other
    endpoint's position in the whole edge order, ``perm`` maps back to ``line_index`` columns.
    """

    perm: Tensor
    local: Tensor
    other: Tensor
    ptr: list


@dataclass(frozen=True, eq=False)
class Schedule:
    """Edges permuted so that each level is a contiguous slice ``edge_ptr[l]:edge_ptr[l+1]``.

    The forward sweep groups line edges by their target's level (it writes into targets), the
    backward sweep by their source's level (it writes into sources). Writing into one level's
    slice keeps every in-place update proportional to that level's size.
    """

    edge_perm: Tensor  # [E] original edge id at each permuted position
    src: Tensor  # [E] DAG source node, permuted order
    dst: Tensor  # [E] DAG target node, permuted order
    edge_ptr: list  # [num_levels + 1]
    forward: Sweep  # local = target, other = source
    backward: Sweep  # local = source, other = target

    @property
    def num_levels(self) -> int:
        return len(self.edge_ptr) - 1


def _sweep(level: Tensor, local: Tensor, other: Tensor, edge_ptr: Tensor, num_levels: int):
    perm = torch.sort(level, stable=True).indices
    counts = torch.bincount(level, minlength=num_levels)
    level = level[perm]
    return Sweep(perm=perm, local=local[perm] - edge_ptr[level], other=other[perm],
                 ptr=[0] + torch.cumsum(counts, 0).tolist())


def make_schedule(graph: LineGraph) -> Schedule:
    edge_perm = torch.sort(graph.edge_level, stable=True).indices
    position = torch.empty_like(edge_perm)
    position[edge_perm] = torch.arange(graph.num_edges, device=edge_perm.device)
    edge_ptr = torch.zeros(graph.num_levels + 1, dtype=torch.long, device=edge_perm.device)
    edge_ptr[1:] = torch.cumsum(torch.bincount(graph.edge_level, minlength=graph.num_levels), 0)
    e_in, e_out = graph.line_index
    src, dst = graph.edge_index[:, edge_perm]
    return Schedule(
        edge_perm=edge_perm, src=src, dst=dst, edge_ptr=edge_ptr.tolist(),
        forward=_sweep(graph.edge_level[e_out], position[e_out], position[e_in], edge_ptr,
                       graph.num_levels),
        backward=_sweep(graph.edge_level[e_in], position[e_in], position[e_out], edge_ptr,
                        graph.num_levels),
    )


def schedule_of(graph: LineGraph) -> Schedule:
    """The schedule of ``graph``, computed once per :class:`~plstm_graph.LineGraph`."""
    return graph.cached("schedule", make_schedule)
