"""Graphs of a batch grouped into padded blocks of similar size, for the per-graph dense kernel
(:mod:`.parallel`).

A batch is a disjoint union, so its gating matrix is block diagonal: one block per weakly
connected component. Components are bucketed by node count (powers of two), and within a
bucket padded to its largest member, so padding never costs more than 4x in the ``N^2`` terms.
Within a component, edges are ordered by level, which makes the line-graph transition matrix
strictly lower triangular.
"""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from torch import Tensor

from ...graph.line_graph import LineGraph


@dataclass(frozen=True, eq=False)
class Block:
    """``count`` components padded to ``num_nodes`` nodes and ``num_edges`` edges."""

    count: int
    num_nodes: int
    num_edges: int
    nodes: Tensor  # [n] batch node ids of this block's nodes
    node_slot: Tensor  # [n] component * num_nodes + position: where each node sits, flattened
    edges: Tensor  # [e] batch edge ids
    edge_comp: Tensor  # [e] component (within the block) of each edge
    edge_pos: Tensor  # [e] position of each edge in its component (level order)
    src_pos: Tensor  # [e] position of each edge's source node in its component
    dst_pos: Tensor  # [e] position of each edge's target node
    lines: Tensor  # [l] batch line-edge ids
    line_comp: Tensor  # [l]
    line_in_pos: Tensor  # [l] edge position of e_in
    line_out_pos: Tensor  # [l] edge position of e_out


def _positions(group: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rank of each item within its group, groups and ranks following ``order``."""
    ranks = np.empty(len(order), dtype=np.int64)
    sorted_groups = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    ranks[order] = np.arange(len(order)) - np.repeat(starts, counts)
    return ranks


def make_blocks(edge_index: Tensor, line_index: Tensor, edge_level: Tensor,
                num_nodes: int) -> list[Block]:
    src, dst = edge_index.cpu().numpy()
    line_in, line_out = line_index.cpu().numpy()
    level = edge_level.cpu().numpy()
    adjacency = sp.coo_matrix((np.ones(len(src)), (src, dst)), shape=(num_nodes, num_nodes))
    _, comp = connected_components(adjacency, directed=True, connection="weak")
    node_pos = _positions(comp, np.argsort(comp, kind="stable"))
    edge_comp = comp[src] if len(src) else np.zeros(0, dtype=np.int64)
    edge_pos = _positions(edge_comp, np.lexsort((level, edge_comp)))
    comp_nodes = np.bincount(comp, minlength=comp.max(initial=-1) + 1)
    comp_edges = np.bincount(edge_comp, minlength=len(comp_nodes))
    bucket = np.ceil(np.log2(np.maximum(comp_nodes, 1))).astype(np.int64)

    device = edge_index.device

    def tensor(array):
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.long, device=device)

    blocks = []
    for b in np.unique(bucket):
        members = np.flatnonzero(bucket == b)
        local = np.full(len(comp_nodes), -1)
        local[members] = np.arange(len(members))
        width = int(comp_nodes[members].max())
        nodes = np.flatnonzero(local[comp] >= 0)
        edges = np.flatnonzero(local[edge_comp] >= 0)
        lines = np.flatnonzero(local[edge_comp[line_in]] >= 0) if len(line_in) else line_in
        blocks.append(Block(
            count=len(members), num_nodes=width, num_edges=int(comp_edges[members].max()),
            nodes=tensor(nodes), node_slot=tensor(local[comp[nodes]] * width + node_pos[nodes]),
            edges=tensor(edges), edge_comp=tensor(local[edge_comp[edges]]),
            edge_pos=tensor(edge_pos[edges]), src_pos=tensor(node_pos[src[edges]]),
            dst_pos=tensor(node_pos[dst[edges]]), lines=tensor(lines),
            line_comp=tensor(local[edge_comp[line_in[lines]]]),
            line_in_pos=tensor(edge_pos[line_in[lines]]),
            line_out_pos=tensor(edge_pos[line_out[lines]]),
        ))
    return blocks


def blocks_of(graph: LineGraph) -> list[Block]:
    """The padded blocks of ``graph``, computed once per :class:`~plstm_graph.LineGraph`."""
    return graph.cached("blocks", lambda g: make_blocks(g.edge_index, g.line_index, g.edge_level,
                                                        g.num_nodes))
