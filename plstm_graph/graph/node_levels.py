"""Node levels of a DAG, laid out for recurrences that update every node of a level at once.

A node's level is its longest-path depth: 0 without predecessors, else one more than its
deepest predecessor. So every predecessor of a level-``l`` node sits on an earlier level, and a
node-recurrent model (Tree-LSTM, DAG-RNN) can update all nodes of one level, over every graph of
a batch, together: the number of sequential steps is the batch's depth.
"""
from dataclasses import dataclass

import torch
from torch import Tensor

from .orientation import check_acyclic
from .prepare import orient_dag
from .topology import csr


@dataclass(frozen=True, eq=False)
class LevelInputs:
    """The DAG edges into one level, grouped by the level their source lies on.

    ``sources[j] = (level s, rows p)``: the sources of group ``j`` are rows ``p`` of level ``s``
    (``p = None``: all rows of level ``s``, in order). ``target`` is each edge's target row within
    this level, in the groups' order (ascending within a group); ``edge`` is each edge's column in
    the DAG's ``edge_index``, in the same order. ``one_each``: every node of the level has exactly
    one predecessor and edge ``j`` targets row ``j`` (chains, trees from the root down), so sums
    over predecessors are the gathered rows themselves.
    """

    sources: list
    target: Tensor
    edge: Tensor
    one_each: bool


@dataclass(frozen=True, eq=False)
class NodeSchedule:
    """Nodes sorted by level, and the edges every level reads (see :func:`node_schedule`).

    Attributes:
        edge_index: ``[2, E]`` the DAG's edges ``(src, dst)``.
        num_nodes: number of nodes ``N``.
        depth: ``[N]`` every node's level.
        order: ``[N]`` node ids sorted by level (stably): level ``l`` is
            ``order[node_ptr[l]:node_ptr[l + 1]]``.
        rank: ``[N]`` each node's position in ``order`` (its inverse permutation).
        node_ptr: ``num_levels + 1`` level boundaries in ``order``.
        inputs: per level, its :class:`LevelInputs` (``None`` for level 0, which has no edges in).
    """

    edge_index: Tensor
    num_nodes: int
    depth: Tensor
    order: Tensor
    rank: Tensor
    node_ptr: list
    inputs: list

    @property
    def num_levels(self) -> int:
        return len(self.node_ptr) - 1

    @property
    def level_sizes(self) -> list:
        return [end - start for start, end in zip(self.node_ptr[:-1], self.node_ptr[1:])]

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
                f"num_edges={self.edge_index.size(1)}, num_levels={self.num_levels})")


def node_schedule(edge_index: Tensor, num_nodes: int, depth: Tensor | None = None) -> NodeSchedule:
    """The level layout of a DAG (``edge_index`` taken as given; a cycle raises ``ValueError``).

    Args:
        edge_index: ``[2, E]`` directed acyclic edges; a batch's disjoint union works as one DAG.
        num_nodes: number of nodes ``N``.
        depth: the nodes' longest-path depths, when the caller has them already.
    """
    if depth is None:
        depth = check_acyclic(edge_index, num_nodes)
    device = edge_index.device
    num_levels = int(depth.max()) + 1 if num_nodes else 0
    order, ptr = csr(depth, num_levels)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(num_nodes, device=device)
    position = rank - ptr[depth]  # row within the node's level

    src, dst = edge_index
    # Edges sorted by (target level, source level, target row): each level's edges are one
    # contiguous slice, and within it each source level is one run, read with one gather.
    edge = torch.sort(rank[dst], stable=True).indices
    pair = depth[dst] * num_levels + depth[src]
    edge = edge[torch.sort(pair[edge], stable=True).indices]
    pairs, counts = torch.unique_consecutive(pair[edge], return_counts=True)
    src_rows, dst_rows = position[src[edge]], position[dst[edge]]
    # A run that reads all rows of its source level in order needs no gather (chains).
    run = torch.repeat_interleave(torch.arange(pairs.numel(), device=device), counts)
    start = torch.cumsum(counts, 0) - counts
    out_of_order = src_rows != torch.arange(edge.numel(), device=device) - start[run]
    level_sizes = ptr[1:] - ptr[:-1]
    whole = (counts == level_sizes[pairs % max(num_levels, 1)]) & \
        (torch.zeros_like(counts).index_add(0, run, out_of_order.long()) == 0)

    level_sizes = level_sizes.tolist()
    edges_in = torch.bincount(depth[dst], minlength=num_levels).tolist()
    inputs: list = [None] * num_levels
    groups: dict[int, list] = {}
    for key, rows, whole_level in zip(pairs.tolist(), src_rows.split(counts.tolist()),
                                      whole.tolist()):
        groups.setdefault(key // num_levels, []).append(
            (key % num_levels, None if whole_level else rows))
    for level, edges, targets in zip(range(num_levels), edge.split(edges_in),
                                     dst_rows.split(edges_in)):
        if level in groups:
            one_each = len(groups[level]) == 1 and edges_in[level] == level_sizes[level]
            inputs[level] = LevelInputs(groups[level], targets, edges, one_each)
    return NodeSchedule(edge_index, num_nodes, depth, order, rank, ptr.tolist(), inputs)


def prepare_node_schedule(edge_index: Tensor, num_nodes: int, orientation: str = "index",
                          reverse: bool = False) -> NodeSchedule:
    """Orient ``edge_index`` into a DAG (as :func:`~plstm_graph.prepare_dag` does) and lay out
    its node levels; ``reverse=True`` lays out the reversed DAG (sinks first)."""
    dag_edge_index, _, depth = orient_dag(edge_index, num_nodes, orientation)
    if reverse:
        return node_schedule(dag_edge_index.flip(0), int(num_nodes))
    return node_schedule(dag_edge_index, int(num_nodes), depth)
