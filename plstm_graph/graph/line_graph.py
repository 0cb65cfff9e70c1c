"""The line graph of a DAG, with edge levels: the structure every pLSTM kernel runs on."""
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

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

    def cached(self, key: str, build: Callable[["LineGraph"], Any]) -> Any:
        """``build(self)``, computed once per graph and kept on it.

        Kernels keep the layouts they derive from the structure here (the level schedule, the
        padded blocks), so every layer that runs on one batch's line graph shares them, and
        they go when the graph goes (no process-wide cache).
        """
        cache = self.__dict__.setdefault("_derived", {})
        if key not in cache:
            cache[key] = build(self)
        return cache[key]

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
