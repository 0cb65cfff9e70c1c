"""pLSTM in its parallel ("gating matrix") form, one dense block per graph.

Per graph and head, ``h = (G * Q K^T) V + D (q . k) v`` with
``G = A_in diag(M) (I - T)^-1 diag(S) A_out``: a unit lower-triangular solve (edges in level
order) instead of a sweep over levels, so the number of sequential steps does not grow with
depth and no ``[E, H, K, V]`` cell state is ever formed. Its cost grows with the square of
each graph's size, so it suits batches of small graphs (molecules); graphs of similar size
share one padded batch of blocks (see :mod:`.blocks`). Gradients come from
autograd through the solve.

The form multiplies structural zeros (padding, unreachable pairs, the zeros of ``I - T``) with
every value of a graph, so one NaN or inf input would reach all of that graph (``0 * NaN``);
when the output is not finite it is therefore recomputed by the level sweep, which follows the
recurrence's data flow and leaves NaN only where the reference puts it.
"""
import torch
from torch import Tensor

from ...graph.line_graph import LineGraph
from .blocks import blocks_of
from .levels import plstm_levels
from .naive import direct_term


def _blocked(x: Tensor, block) -> Tensor:
    """Rows of ``x [N, ...]`` laid out as ``[count, num_nodes, ...]`` (zeros where padded)."""
    out = x.new_zeros(block.count * block.num_nodes, *x.shape[1:])
    out = out.index_copy(0, block.node_slot, x.index_select(0, block.nodes))
    return out.view(block.count, block.num_nodes, *x.shape[1:])


def plstm_parallel(q, k, v, source, transition, mark, direct, graph: LineGraph,
                   recompute: bool = False) -> Tensor:
    """pLSTM by the gating-matrix form, one padded batch of blocks at a time."""
    out = direct_term(q, k, v, direct).flatten(1)
    heads = q.size(1)
    for block in blocks_of(graph):
        if block.num_edges == 0:
            continue
        shape = (block.count, heads, block.num_edges)
        t = q.new_zeros(*shape, block.num_edges)
        t[block.line_comp, :, block.line_out_pos, block.line_in_pos] = transition[block.lines]
        s = q.new_zeros(*shape, block.num_nodes)  # diag(S) A_out
        s[block.edge_comp, :, block.edge_pos, block.src_pos] = source[block.edges]
        m = q.new_zeros(block.count, heads, block.num_nodes, block.num_edges)  # A_in diag(M)
        m[block.edge_comp, :, block.dst_pos, block.edge_pos] = mark[block.edges]
        eye = torch.eye(block.num_edges, dtype=q.dtype, device=q.device)
        gate = m @ torch.linalg.solve_triangular(eye - t, s, upper=False, unitriangular=True)
        qb, kb, vb = _blocked(q, block), _blocked(k, block), _blocked(v, block)
        scores = torch.einsum("cnhk,cmhk->chnm", qb, kb)
        h = torch.einsum("chnm,cmhv->cnhv", gate * scores, vb).flatten(2).flatten(0, 1)
        out = out.index_add(0, block.nodes, h.index_select(0, block.node_slot))
    out = out.view(q.size(0), heads, v.size(-1))
    if not bool(torch.isfinite(out).all()):
        return plstm_levels(q, k, v, source, transition, mark, direct, graph, recompute)
    return out
