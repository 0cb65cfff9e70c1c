"""Graphs of a batch packed into padded blocks of similar size, for the per-graph dense kernel
(:mod:`.parallel`).

A batch is a disjoint union, so its gating matrix is block diagonal: one block per weakly
connected component. Components are sorted by size and cut into runs that are padded to their
largest member; the cuts minimise a cost model (:func:`pack`): a fixed cost per block (the
kernel's calls) plus the padded work of every member. Within a component, edges are ordered
by level, which makes the line-graph transition matrix strictly lower triangular.

Every index a kernel needs is precomputed here as a flat *slot*: where a node, an edge or a
line edge sits in the row-major ``[count, size, ...]`` layout of its block. :class:`Layout`
lays every block's slots, heads leading, one after another, so that a kernel gathers the
inputs of all blocks with one ``index_select`` per input and sends every gradient back with one
gather (or one ``index_add_``), whatever the number of blocks.
"""
import itertools
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from torch import Tensor

from ...graph.line_graph import LineGraph

#: Fixed cost of one more block, in units of padded ``nodes x edges`` of one graph: the kernel's
#: ~12 calls per block against the work of one node-edge pair in its solve and products
#: (1000-2000 measured alike on 1 CPU thread with ``benchmarks/plstm_bench.py``'s batch, about
#: 10 % faster than 4000, the value while every block cost ~75 calls).
BLOCK_COST = 1500


@dataclass(frozen=True, eq=False)
class Block:
    """``count`` components padded to ``num_nodes`` source nodes (those that start an edge)
    and ``num_edges`` edges.

    The ``*_rows`` maps give, for every slot of the block's row-major layout, the batch row a
    kernel gathers there; padding slots point one past the last row, where the kernel keeps a
    zero (or, when it scatters back, a discarded) row.
    """

    count: int
    num_nodes: int
    num_edges: int
    node_rows: Tensor  # [count * num_nodes] source node at each node slot
    dst_rows: Tensor  # [count * num_edges] target node of the edge at each edge slot (level order)
    edges: Tensor  # [e] batch ids of this block's edges
    edge_slot: Tensor  # [e] their edge slot
    source_slot: Tensor  # [e] their slot (e, src e) in the [count, num_edges, num_nodes] layout
    lines: Tensor  # [l] batch ids of this block's line edges
    line_in_slot: Tensor  # [l] edge slot of e_in
    line_out_slot: Tensor  # [l] edge slot of e_out


def _positions(group: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rank of each item within its group, groups and ranks following ``order``."""
    ranks = np.empty(len(order), dtype=np.int64)
    sorted_groups = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    ranks[order] = np.arange(len(order)) - np.repeat(starts, counts)
    return ranks


def pack(num_nodes: np.ndarray, num_edges: np.ndarray, block_cost: float = BLOCK_COST) -> list:
    """Cut components, sorted by ``(num_nodes, num_edges)``, into runs of least total cost
    ``sum over runs of block_cost + len(run) * max nodes * max edges`` (dynamic programming
    over the distinct sizes). Returns one array of component ids per block."""
    order = np.lexsort((num_edges, num_nodes))
    sizes, first, counts = np.unique(np.stack([num_nodes[order], num_edges[order]], 1), axis=0,
                                     return_index=True, return_counts=True)
    before = np.concatenate([[0], np.cumsum(counts)])  # components before each distinct size
    best = np.zeros(len(sizes) + 1)
    cut = np.zeros(len(sizes), dtype=np.int64)
    for j in range(len(sizes)):
        # Run i..j: padded to nodes[j] (sorted) and the largest edge count in it.
        edges = np.maximum.accumulate(sizes[j::-1, 1])[::-1]
        cost = best[:j + 1] + block_cost + (before[j + 1] - before[:j + 1]) * sizes[j, 0] * edges
        cut[j] = int(np.argmin(cost))
        best[j + 1] = cost[cut[j]]
    runs, j = [], len(sizes) - 1
    while j >= 0:
        runs.append(order[first[cut[j]]:first[j] + counts[j]])
        j = cut[j] - 1
    return runs[::-1]


def weak_components(edge_index: Tensor, num_nodes: int) -> np.ndarray:
    """The weakly connected component of every node: ``[num_nodes]`` ids ``0..C-1``."""
    src, dst = edge_index.cpu().numpy()
    adjacency = sp.coo_matrix((np.ones(len(src)), (src, dst)), shape=(num_nodes, num_nodes))
    return connected_components(adjacency, directed=True, connection="weak")[1]


def make_blocks(edge_index: Tensor, line_index: Tensor, edge_level: Tensor, num_nodes: int,
                comp: np.ndarray | None = None) -> list[Block]:
    """Blocks of the components that have edges (the others only have a direct term);
    ``comp``: :func:`weak_components`, when already known."""
    src, dst = edge_index.cpu().numpy()
    line_in, line_out = line_index.cpu().numpy()
    level = edge_level.cpu().numpy()
    comp = weak_components(edge_index, num_nodes) if comp is None else comp
    num_comps = int(comp.max()) + 1 if num_nodes else 0
    # Only nodes that start an edge are columns of A_out: the others (sinks, about a quarter of
    # an index-oriented molecule's atoms) are left out of the blocks.
    sources = np.unique(src)
    node_pos = np.full(num_nodes, -1)
    node_pos[sources] = _positions(comp[sources], np.argsort(comp[sources], kind="stable"))
    edge_comp = comp[src]
    edge_pos = _positions(edge_comp, np.lexsort((level, edge_comp)))
    comp_nodes = np.bincount(comp[sources], minlength=num_comps)
    comp_edges = np.bincount(edge_comp, minlength=num_comps)
    with_edges = np.flatnonzero(comp_edges)
    device = edge_index.device

    def tensor(array):
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.long, device=device)

    blocks = []
    for run in pack(comp_nodes[with_edges], comp_edges[with_edges], BLOCK_COST):
        members = with_edges[run]
        local = np.full(len(comp_nodes), -1)
        local[members] = np.arange(len(members))
        count = len(members)
        width, depth = int(comp_nodes[members].max()), int(comp_edges[members].max())
        nodes = sources[local[comp[sources]] >= 0]
        edges = np.flatnonzero(local[edge_comp] >= 0)
        lines = np.flatnonzero(local[edge_comp[line_in]] >= 0)
        node_slot = local[comp[nodes]] * width + node_pos[nodes]
        edge_slot = np.full(len(src), -1)
        edge_slot[edges] = local[edge_comp[edges]] * depth + edge_pos[edges]
        source_slot = edge_slot[edges] * width + node_pos[src[edges]]

        def rows(size, slot, values, padding):
            out = np.full(size, padding)
            out[slot] = values
            return tensor(out)

        blocks.append(Block(
            count=count, num_nodes=width, num_edges=depth,
            node_rows=rows(count * width, node_slot, nodes, num_nodes),
            dst_rows=rows(count * depth, edge_slot[edges], dst[edges], num_nodes),
            edges=tensor(edges), edge_slot=tensor(edge_slot[edges]),
            source_slot=tensor(source_slot), lines=tensor(lines),
            line_in_slot=tensor(edge_slot[line_in[lines]]),
            line_out_slot=tensor(edge_slot[line_out[lines]]),
        ))
    return blocks


def _per_head(rows: Tensor, heads: int) -> Tensor:
    """Row map ``[S]`` of a block -> ``[H * S]`` indices into a flattened ``[rows, H]`` input,
    heads leading (``rows[s] * H + h`` at ``h * S + s``)."""
    return (rows * heads + torch.arange(heads, device=rows.device)[:, None]).flatten()


@dataclass(frozen=True, eq=False)
class Layout:
    """All blocks of a batch for ``heads`` heads, block after block, each block's buffers laid
    out ``[H, count, ...]``: ``shapes[b] = (count, num_edges, num_nodes)``.

    The gather maps index inputs flattened with one zero row appended (``[(rows + 1) * H]``);
    the ``*_of`` maps give, for each input ``(row, head)``, its slot in a buffer of the same
    layout: gradients are gathered there, and the sparse gates are put there into zeroed
    ``[E, N]`` and ``[E, E]`` blocks (nodes without a slot point one past the buffer's end,
    where a kernel keeps a zero).
    """

    heads: int
    shapes: list  # [(count, num_edges, num_nodes)] per block
    sizes: dict  # "E", "N", "EE", "EN" -> [elements per block]
    dst: Tensor  # [sum H c E] q row at each edge slot (the edge's target)
    node: Tensor  # [sum H c N] k, v row at each node slot
    node_of: Tensor  # [N, H] node slot of each (node, head)
    edge_of: Tensor  # [E, H] edge slot of each (edge, head)
    source_of: Tensor  # [E, H] slot (e, src e) of each (edge, head) in the [E, N] blocks
    transition_of: Tensor  # [L, H] slot (e_out, e_in) of each (line edge, head): lower triangular
    transition_t_of: Tensor  # [L, H] slot (e_in, e_out): the transposed, upper triangular

    def split(self, buffer: Tensor, kind: str) -> list[Tensor]:
        """Per-block views ``[H * count, *sizes, ...]`` of a buffer of this layout; ``kind`` names
        the block dimensions: ``"E"``, ``"N"``, ``"EE"`` or ``"EN"``."""
        dims = {"E": 1, "N": 2}
        return [part.view(self.heads * shape[0], *(shape[dims[d]] for d in kind),
                           *buffer.shape[1:])
                for part, shape in zip(buffer.split(self.sizes[kind]), self.shapes)]


def make_layout(blocks: list[Block], num_nodes: int, num_edges: int, num_lines: int,
                heads: int) -> Layout:
    """The :class:`Layout` of ``blocks`` for ``heads`` heads."""
    shapes = [(b.count, b.num_edges, b.num_nodes) for b in blocks]
    sizes = {kind: [heads * c * math.prod({"E": e, "N": n}[d] for d in kind) for c, e, n in shapes]
             for kind in ("E", "N", "EE", "EN")}
    device = blocks[0].edges.device if blocks else torch.device("cpu")
    head = torch.arange(heads, device=device)
    node_of = torch.full((num_nodes, heads), sum(sizes["N"]), dtype=torch.long, device=device)
    edge_of, source_of = (node_of.new_empty(num_edges, heads) for _ in range(2))
    transition_of, transition_t_of = (node_of.new_empty(num_lines, heads) for _ in range(2))
    offsets = {kind: [0, *itertools.accumulate(sizes[kind])] for kind in sizes}
    for i, (block, (_, depth, _)) in enumerate(zip(blocks, shapes)):
        def slots(kind, slot):  # [items, H]: where each item sits, for every head
            return offsets[kind][i] + head * (sizes[kind][i] // heads) + slot[:, None]

        sources = torch.nonzero(block.node_rows < num_nodes).flatten()
        node_of[block.node_rows[sources]] = slots("N", sources)
        edge_of[block.edges] = slots("E", block.edge_slot)
        source_of[block.edges] = slots("EN", block.source_slot)
        # (e_out, e_in) within a graph: edge slot of e_out times depth plus e_in's position.
        transition_of[block.lines] = slots("EE", block.line_out_slot * depth
                                           + block.line_in_slot % depth)
        transition_t_of[block.lines] = slots("EE", block.line_in_slot * depth
                                             + block.line_out_slot % depth)

    def cat(name):
        maps = [_per_head(getattr(block, name), heads) for block in blocks]
        return torch.cat(maps) if maps else torch.zeros(0, dtype=torch.long, device=device)

    return Layout(heads=heads, shapes=shapes, sizes=sizes, dst=cat("dst_rows"),
                  node=cat("node_rows"), node_of=node_of, edge_of=edge_of, source_of=source_of,
                  transition_of=transition_of, transition_t_of=transition_t_of)


def layout_of(graph: LineGraph, heads: int) -> Layout:
    """The :class:`Layout` of ``graph``'s blocks for ``heads`` heads, computed once per graph."""
    return graph.cached(f"layout/{heads}", lambda g: make_layout(
        blocks_of(g), g.num_nodes, g.num_edges, g.num_line_edges, heads))


def components_of(graph: LineGraph) -> np.ndarray:
    """:func:`weak_components` of ``graph``, computed once per graph."""
    return graph.cached("components", lambda g: weak_components(g.edge_index, g.num_nodes))


def component_edges(graph: LineGraph) -> Tensor:
    """``[N]``: the number of edges of each node's weakly connected component."""
    def build(g):
        comp = components_of(g)
        counts = np.bincount(comp[g.edge_index[0].cpu().numpy()], minlength=comp.max(initial=-1) + 1)
        return torch.as_tensor(counts[comp], device=g.edge_index.device)
    return graph.cached("component_edges", build)


def blocks_of(graph: LineGraph) -> list[Block]:
    """The padded blocks of ``graph``, computed once per :class:`~plstm_graph.LineGraph`."""
    return graph.cached("blocks", lambda g: make_blocks(g.edge_index, g.line_index, g.edge_level,
                                                        g.num_nodes, components_of(g)))
