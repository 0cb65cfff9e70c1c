"""The line graph of a DAG, with edge levels: the structure every pLSTM kernel runs on."""
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from .blocks import make_blocks
from .orientation import check_acyclic
from .pruning import prune_to_multitree
from .topology import csr, expand_ranges, longest_path_depth

MODES = ("P", "D")


def line_graph_index(edge_index: Tensor, num_nodes: int) -> Tensor:
    """All pairs ``(e_in, e_out)`` with ``dst(e_in) == src(e_out)``: ``[2, L]``, sorted by
    ``e_in`` and then by ``e_out``."""
    perm, ptr = csr(edge_index[0], num_nodes)
    shared = edge_index[1]
    counts = ptr[shared + 1] - ptr[shared]
    e_in = torch.repeat_interleave(torch.arange(edge_index.size(1), device=edge_index.device), counts)
    e_out = perm[expand_ranges(ptr[shared], counts)]
    return torch.stack([e_in, e_out])


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
    """The level-by-level plan the kernels follow (derived once per :class:`LineGraph`).

    Edges are permuted so that each level is a contiguous slice ``edge_ptr[l]:edge_ptr[l+1]``.
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


@dataclass(eq=False)
class LineGraph:
    """A DAG and the line graph pLSTM propagates on (SPEC section 2).

    Attributes:
        edge_index: ``[2, E]`` oriented DAG edges ``(src, dst)``.
        edge_id: ``[E]`` the column of the input ``edge_index`` each DAG edge came from.
        line_index: ``[2, L]`` line edges ``(e_in, e_out)`` indexing ``edge_index`` columns; in
            D-mode only the pairs kept by the multitree pruning.
        edge_level: ``[E]`` 0 for a line node without predecessors in ``line_index``, else one
            more than its deepest predecessor.
        num_nodes: number of DAG nodes.
        mode: ``"P"`` (full line graph) or ``"D"`` (pruned multitree).
    """

    edge_index: Tensor
    edge_id: Tensor
    line_index: Tensor
    edge_level: Tensor
    num_nodes: int
    mode: str = "P"

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    @property
    def num_line_edges(self) -> int:
        return self.line_index.size(1)

    @property
    def num_levels(self) -> int:
        """Sequential steps a level-batched kernel takes."""
        return int(self.edge_level.max()) + 1 if self.num_edges else 0

    @cached_property
    def schedule(self) -> Schedule:
        """The level-by-level plan of the ``levels`` kernel (computed once per graph)."""
        return _make_schedule(self)

    @cached_property
    def blocks(self) -> list:
        """Graphs grouped into padded dense blocks (see :mod:`~plstm_graph.graph.blocks`)."""
        return make_blocks(self.edge_index, self.line_index, self.edge_level, self.num_nodes)

    def reverse(self) -> "LineGraph":
        """The line graph of the reversed DAG, in the same mode and edge order."""
        return build_line_graph(self.edge_index.flip(0), self.edge_id, self.num_nodes, self.mode)

    def to(self, device) -> "LineGraph":
        return LineGraph(self.edge_index.to(device), self.edge_id.to(device),
                         self.line_index.to(device), self.edge_level.to(device),
                         self.num_nodes, self.mode)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(mode={self.mode!r}, num_nodes={self.num_nodes}, "
                f"num_edges={self.num_edges}, num_line_edges={self.num_line_edges}, "
                f"num_levels={self.num_levels})")


def build_line_graph(dag_edge_index: Tensor, edge_id: Tensor, num_nodes: int, mode: str,
                     depth: Tensor | None = None) -> LineGraph:
    """Line graph and levels of an (already oriented, acyclic) DAG."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if depth is None:
        depth = check_acyclic(dag_edge_index, num_nodes)
    line_index = line_graph_index(dag_edge_index, num_nodes)
    # On the full line graph an edge's level is the longest-path depth of its source node.
    edge_level = depth[dag_edge_index[0]]
    if mode == "D":
        line_index = prune_to_multitree(line_index, edge_level)
        edge_level, _ = longest_path_depth(line_index, dag_edge_index.size(1))
    return LineGraph(dag_edge_index, edge_id, line_index, edge_level, num_nodes, mode)


def _sweep(level: Tensor, local: Tensor, other: Tensor, edge_ptr: Tensor, num_levels: int):
    perm = torch.sort(level, stable=True).indices
    counts = torch.bincount(level, minlength=num_levels)
    level = level[perm]
    return Sweep(perm=perm, local=local[perm] - edge_ptr[level], other=other[perm],
                 ptr=[0] + torch.cumsum(counts, 0).tolist())


def _make_schedule(graph: LineGraph) -> Schedule:
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
