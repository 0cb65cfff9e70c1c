"""pLSTM on grid line graphs in the paper's chunkwise 2D form: parallel inside ``C x C`` chunks,
recurrent between them.

The grid (corner coordinates, padded to whole chunks with gate-less nodes) is cut into
``C x C`` chunks. Inside a chunk the cell states of its ``2 C^2`` outputs (right and down edge of
every node, ordered row-major so that a state's inputs come first) solve

    X = T_loc X + T_in Z + S_sel (k v^T)        ->   X = (I - T_loc)^-1 [S_sel | T_in] [k v^T; Z]

where ``Z`` are the ``2 C`` boundary states entering the chunk (the left chunk's right-column
``R`` states and the upper chunk's bottom-row ``D`` states). With the readout matrix ``Rd`` (each
node reads its left and upper input with that edge's mark) this gives, per chunk, grid and head,
the gating matrices of the parallel form

    G   = Rd_loc Y_S                (C^2 x C^2)     Hq  = Rd_loc Y_T + Rd_bnd   (C^2 x 2C)
    F   = Y_S[boundary outputs]     (2C  x C^2)     Tzz = Y_T[boundary outputs] (2C x 2C)

(``Y = (I - T_loc)^-1 [S_sel | T_in]``, one unit-triangular solve), so that

    h_n   = sum_m G[n, m] (q_n . k_m) v_m  +  sum_z Hq[n, z] q_n^T Z_z  +  D_n (q_n . k_n) v_n
    Z_out = F (k v^T)  +  Tzz Z_in

Only the boundary states ``Z`` are ever formed (``2 C`` per chunk instead of 2 per node), and
all the work is batched matrix products; the recurrence runs over the chunk anti-diagonals
(``2 n / C - 1`` steps for an ``n x n`` grid). Gradients come from autograd through these
products and the solve. A non-finite output is recomputed by the sweep (:mod:`.grid`), so NaN
and inf reach only what they reach in the reference. Tested against the sweep and the DAG
reference.
"""
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ...graph.grid import GridLineGraph
from .grid import _gather, grid_layout, plstm_grid
from .naive import direct_term

#: Default chunk side: the solve grows as (2 C^2)^3 per chunk, the boundary work as C per node.
CHUNK = 4


@dataclass(frozen=True, eq=False)
class ChunkLayout:
    """Index maps from a :class:`GridLineGraph` to ``[chunks, C^2, count]`` node slots (the
    padded grid cut into ``C x C`` chunks, row-major within a chunk) and the static structure
    of one chunk."""

    chunk: int
    rows: int  # chunks per column
    cols: int  # chunks per row
    count: int
    node: Tensor  # [chunks * C^2 * count] node at each slot (num_nodes: padding)
    out_edge: Tensor  # [chunks * C^2 * 2 * count] output edges (right, down) of each node
    in_edge: Tensor  # [chunks * C^2 * 2 * count] input edges (from left, from above)
    transitions: Tensor  # [chunks * C^2 * 4 * count] line edge of each kind at each node
    slot: Tensor  # [N] slot of each node in the chunk layout (count innermost)


def chunk_layout(graph: GridLineGraph, chunk: int = CHUNK) -> ChunkLayout:
    layout = graph.cached("grid_layout", grid_layout)
    height, width, count = graph.height, graph.width, graph.count
    rows, cols = math.ceil(height / chunk), math.ceil(width / chunk)
    positions = height * width  # the pad position
    grid = torch.full((rows * chunk, cols * chunk), positions, dtype=torch.long)
    grid[:height, :width] = layout.position.cpu()
    left, above = torch.full_like(grid, positions), torch.full_like(grid, positions)
    left[:, 1:], above[1:] = grid[:, :-1], grid[:-1]
    # [rows, C, cols, C] -> [chunks, C^2]: chunk-major, row-major inside a chunk.
    order = lambda x: x.view(rows, chunk, cols, chunk).transpose(1, 2).reshape(-1)  # noqa: E731
    at, at_left, at_above = order(grid), order(left), order(above)

    device = graph.edge_index.device
    node = torch.cat([layout.node.cpu().view(positions, count),
                      torch.full((1, count), graph.num_nodes)])
    edges = torch.cat([layout.edges.cpu().view(positions, 2, count),
                       torch.full((1, 2, count), graph.num_edges)])
    lines = torch.cat([layout.transitions.cpu().view(positions, 4, count),
                       torch.full((1, 4, count), graph.num_line_edges)])
    in_edge = torch.stack([edges[at_left, 0], edges[at_above, 1]], 1)
    node_map = node[at].reshape(-1)
    slot = torch.empty(graph.num_nodes, dtype=torch.long)
    real = node_map < graph.num_nodes
    slot[node_map[real]] = real.nonzero().view(-1)
    return ChunkLayout(chunk, rows, cols, count, node_map.to(device),
                       edges[at].reshape(-1).to(device), in_edge.reshape(-1).to(device),
                       lines[at].reshape(-1).to(device), slot.to(device))


def _chunk_structure(chunk: int, device):
    """Static index lists of one chunk: ``(local transitions, sources, readouts)`` as
    ``(row, column, value index)`` triples into the matrices of the module docstring."""
    c2 = chunk * chunk
    n = torch.arange(c2, device=device)
    i, j = n // chunk, n % chunk
    t_rows, t_cols, t_vals = [], [], []  # into [2C^2, 2C^2 + 2C]: [T_loc | T_in]
    for out in (0, 1):
        row = 2 * n + out
        # from the left input: local R of (i, j - 1), or boundary z = i
        t_rows.append(row)
        t_cols.append(torch.where(j > 0, 2 * (n - 1), 2 * c2 + i))
        t_vals.append(n * 4 + out)  # kinds rr, rd
        # from the upper input: local D of (i - 1, j), or boundary z = C + j
        t_rows.append(row)
        t_cols.append(torch.where(i > 0, 2 * (n - chunk) + 1, 2 * c2 + chunk + j))
        t_vals.append(n * 4 + 2 + out)  # kinds dr, dd
    r_rows = torch.cat([n, n])  # into [C^2, 2C^2 + 2C]: [Rd_loc | Rd_bnd]
    r_cols = torch.cat([torch.where(j > 0, 2 * (n - 1), 2 * c2 + i),
                        torch.where(i > 0, 2 * (n - chunk) + 1, 2 * c2 + chunk + j)])
    r_vals = torch.cat([n * 2, n * 2 + 1])  # the left and upper input's mark
    # outgoing boundary: R of the right column (by row), D of the bottom row (by column)
    boundary = torch.cat([2 * (n[j == chunk - 1]), 2 * n[i == chunk - 1] + 1])
    return ((torch.cat(t_rows), torch.cat(t_cols), torch.cat(t_vals)),
            (r_rows, r_cols, r_vals), boundary)


def _gates_to_chunks(x: Tensor, index: Tensor, layout: ChunkLayout, per_node: int) -> Tensor:
    """Gate rows ``[E or L, H]`` gathered to ``[chunks * count * H, C^2 * per_node]``."""
    heads = x.size(-1)
    g = _gather(x, index).view(-1, layout.chunk ** 2 * per_node, layout.count, heads)
    return g.permute(0, 2, 3, 1).reshape(-1, layout.chunk ** 2 * per_node)


def _boundary_states(z_src: Tensor, t_zz: Tensor, layout: ChunkLayout) -> Tensor:
    """``Z_in`` of every chunk ``[chunks, B, 2C, K V]`` from ``Z_out = z_src + Tzz Z_in``, one
    chunk anti-diagonal at a time (``z_src`` like ``Z_in``, ``t_zz [chunks, B, 2C, 2C]``)."""
    rows, cols, chunk = layout.rows, layout.cols, layout.chunk
    first = [max(0, d - cols + 1) for d in range(rows + cols - 1)]
    last = [min(rows - 1, d) for d in range(rows + cols - 1)]
    order = [i * cols + d - i for d in range(rows + cols - 1) for i in range(first[d], last[d] + 1)]
    sizes = [last[d] - first[d] + 1 for d in range(rows + cols - 1)]
    # Diagonal order once, then per-diagonal views: one backward node for all of them.
    order_t = torch.tensor(order, device=z_src.device)
    z_src = z_src.index_select(0, order_t).split(sizes)
    t_zz = t_zz.index_select(0, order_t).split(sizes)
    zero = z_src[0].new_zeros(1, *z_src[0].shape[1:2], chunk, z_src[0].size(-1))
    z_out, z_in = [], []
    for d, size in enumerate(sizes):
        if d == 0:
            left = above = zero
        else:
            prev, p0 = z_out[-1], first[d - 1]
            # left neighbour (i, d - 1 - i) of rows i <= d - 1; upper (i - 1, d - i) of rows i >= 1
            left = prev[first[d] - p0:min(last[d], d - 1) - p0 + 1, :, :chunk]
            above = prev[max(first[d], 1) - 1 - p0:last[d] - 1 - p0 + 1, :, chunk:]
            if last[d] == d:  # chunk (d, 0) has no left neighbour
                left = torch.cat([left, zero.expand(1, *left.shape[1:])])
            if first[d] == 0:  # chunk (0, d) has no upper neighbour
                above = torch.cat([zero.expand(1, *above.shape[1:]), above])
        if left.size(0) != size:
            left = left.expand(size, *left.shape[1:])
        if above.size(0) != size:
            above = above.expand(size, *above.shape[1:])
        z_in.append(torch.cat([left, above], dim=2))
        z_out.append(z_src[d] + t_zz[d] @ z_in[-1])
    inverse = torch.empty_like(order_t)
    inverse[order_t] = torch.arange(len(order), device=order_t.device)
    return torch.cat(z_in).index_select(0, inverse)


def plstm_grid_chunk(q, k, v, source, transition, mark, direct, graph: GridLineGraph,
                     recompute: bool = False, chunk: int = CHUNK) -> Tensor:
    """pLSTM on a :class:`GridLineGraph` in the chunkwise form (``recompute`` unused)."""
    if not isinstance(graph, GridLineGraph):
        raise ValueError(f"graph must be a GridLineGraph for the grid backend, got "
                         f"{type(graph).__name__}")
    layout = graph.cached(f"grid_chunk_layout_{chunk}", lambda g: chunk_layout(g, chunk))
    c2, heads, key_dim, value_dim = chunk * chunk, q.size(1), q.size(-1), v.size(-1)
    num_chunks, count = layout.rows * layout.cols, layout.count
    batch = num_chunks * count * heads  # x = (chunk, grid, head)

    def nodes(x):  # [N, H, D] -> [x, C^2, D]
        g = _gather(x, layout.node).view(num_chunks, c2, count, heads, x.size(-1))
        return g.permute(0, 2, 3, 1, 4).reshape(batch, c2, x.size(-1))

    qc, kc, vc = nodes(q), nodes(k), nodes(v)
    s = _gates_to_chunks(source, layout.out_edge, layout, 2)  # [x, 2C^2] (2n + out)
    m_in = _gates_to_chunks(mark, layout.in_edge, layout, 2)  # [x, 2C^2] (2n + input)
    t = _gates_to_chunks(transition, layout.transitions, layout, 4)  # [x, 4C^2]

    (t_rows, t_cols, t_vals), (r_rows, r_cols, r_vals), boundary = _chunk_structure(chunk, q.device)
    # [I - T_loc | S_sel T_in] as one matrix; solve for Y = (I - T_loc)^-1 [S_sel | T_in].
    width = 2 * c2 + 2 * chunk
    system = q.new_zeros(batch, 2 * c2, width)
    system = system.index_put((torch.arange(batch, device=q.device)[:, None], t_rows, t_cols),
                              -t[:, t_vals])
    eye = torch.eye(2 * c2, dtype=q.dtype, device=q.device)
    lower = system[..., :2 * c2] + eye
    s_sel = torch.zeros(2 * c2, c2, dtype=q.dtype, device=q.device)
    s_sel[torch.arange(2 * c2), torch.arange(2 * c2) // 2] = 1
    rhs = torch.cat([s_sel * s[:, :, None], -system[..., 2 * c2:]], dim=-1)  # [x, 2C^2, C^2 + 2C]
    y = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)
    readout = q.new_zeros(batch, c2, width).index_put(
        (torch.arange(batch, device=q.device)[:, None], r_rows, r_cols), m_in[:, r_vals])
    gq = readout[..., :2 * c2] @ y  # [x, C^2, C^2 + 2C]: [G | Hq - Rd_bnd]
    gate, h_z = gq[..., :c2], gq[..., c2:] + readout[..., 2 * c2:]
    f, t_zz = y[:, boundary, :c2], y[:, boundary, c2:]  # [x, 2C, C^2], [x, 2C, 2C]

    # Inside chunks: (G * Q K^T) V.
    out = (gate * (qc @ kc.transpose(1, 2))) @ vc
    # Boundary states: Z_out = F (k v^T) + Tzz Z_in, chunk anti-diagonal by anti-diagonal.
    kv = (kc[..., None] * vc[:, :, None]).flatten(2)  # [x, C^2, K V]
    z_src = (f @ kv).view(num_chunks, -1, 2 * chunk, key_dim * value_dim)  # [chunks, B, 2C, KV]
    t_zz = t_zz.view(num_chunks, -1, 2 * chunk, 2 * chunk)
    z_in = _boundary_states(z_src, t_zz, layout).view(batch, 2 * chunk, key_dim, value_dim)
    q_z = qc @ z_in.transpose(1, 2).reshape(batch, key_dim, -1)  # [x, C^2, 2C V]: q_n^T Z_z
    out = out + (h_z[..., None] * q_z.view(batch, c2, 2 * chunk, value_dim)).sum(2)
    out = out.view(num_chunks, count, heads, c2, value_dim).permute(0, 3, 1, 2, 4)
    out = out.reshape(-1, heads, value_dim).index_select(0, layout.slot)
    out = out + direct_term(q, k, v, direct)
    if not bool(torch.isfinite(out).all()):
        # The products mix structural zeros with every value of a chunk (0 * NaN); the sweep
        # follows the recurrence's data flow and leaves NaN only where the reference does.
        return plstm_grid(q, k, v, source, transition, mark, direct, graph, recompute)
    return out
