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


def _rows_or_all(rows: Tensor, size: int) -> Tensor | None:
    """``None`` when ``rows`` are all ``size`` rows in order (the gather can be skipped)."""
    whole = rows.numel() == size and bool((rows == torch.arange(size, device=rows.device)).all())
    return None if whole else rows


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
    # Edges sorted by (target level, source level, target row): each (target, source) level pair
    # is one contiguous run, read from one level tensor with one gather.
    edge = torch.sort(rank[dst], stable=True).indices
    pair = depth[dst] * num_levels + depth[src]
    edge = edge[torch.sort(pair[edge], stable=True).indices]
    pairs, counts = torch.unique_consecutive(pair[edge], return_counts=True)
    level_sizes = (ptr[1:] - ptr[:-1]).tolist()
    inputs: list = [None] * num_levels
    groups: dict[int, list] = {}
    for key, run in zip(pairs.tolist(), torch.split(edge, counts.tolist())):
        groups.setdefault(key // num_levels, []).append((key % num_levels, run))
    for level, runs in groups.items():
        edges = torch.cat([run for _, run in runs]) if len(runs) > 1 else runs[0][1]
        sources = [(s, _rows_or_all(position[src[run]], level_sizes[s])) for s, run in runs]
        one_each = len(runs) == 1 and edges.numel() == level_sizes[level]
        inputs[level] = LevelInputs(sources, position[dst[edges]], edges, one_each)
    return NodeSchedule(edge_index, num_nodes, depth, order, rank, ptr.tolist(), inputs)


def prepare_node_schedule(edge_index: Tensor, num_nodes: int, orientation: str = "index",
                          reverse: bool = False) -> NodeSchedule:
    """Orient ``edge_index`` into a DAG (as :func:`~plstm_graph.prepare_dag` does) and lay out
    its node levels; ``reverse=True`` lays out the reversed DAG (sinks first)."""
    dag_edge_index, _, depth = orient_dag(edge_index, num_nodes, orientation)
    if reverse:
        return node_schedule(dag_edge_index.flip(0), int(num_nodes))
    return node_schedule(dag_edge_index, int(num_nodes), depth)
