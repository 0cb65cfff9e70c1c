"""pLSTM in its parallel ("gating matrix") form, per graph in padded blocks, explicit backward.

Per graph and head, with ``B = diag(S) A_out`` (``B[e, m] = S_e [src e == m]``) and edges in
level order, so that the transition matrix ``T`` (``T[e, e'] = T_{e' -> e}``) is strictly lower
triangular::

    X   = (I - T)^-1 B                 one unit-triangular solve       [E, N]
    A   = X * (Q_dst K^T)              A[e, m] = X[e, m] (q_{dst e} . k_m)
    Y   = A V                          Y_e = C_e^T q_{dst e}           [E, V]
    h_n = sum_{e: dst e = n} M_e Y_e + D_n (q_n . k_n) v_n

i.e. ``G = A_in diag(M) X`` of the gating-matrix form (``naive.plstm_dense``), read per edge so
that no ``N x N`` product is formed. No ``[E, H, K, V]`` cell state exists and the number of
sequential steps does not grow with depth; the cost grows with each graph's ``E x N``, so the
form suits batches of small graphs (molecules), packed into padded blocks of similar size
(:mod:`.blocks`). Backward, with ``dY_e = M_e dh_{dst e}``::

    dA = dY V^T     dV = A^T dY     dX = dA * (Q_dst K^T)     dS_e = dB[e, src e]
    dQ_dst = (dA * X) K     dK = (dA * X)^T Q_dst     dB = (I - T)^-T dX     dT = dB X^T

(``dT`` only at the line edges, ``dM_e = Y_e . dh_{dst e}``).

The form multiplies structural zeros (padding, unreachable pairs, the zeros of ``I - T``) with
every value of a graph, so one NaN or inf input would reach all of that graph (``0 * NaN``);
when the output is not finite it is therefore recomputed by the level sweep, which follows the
recurrence's data flow and leaves NaN only where the reference puts it.
"""
import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ...graph.line_graph import LineGraph
from .blocks import Block, blocks_of
from .levels import plstm_levels
from .naive import direct_backward, direct_term


def _head_major(x: Tensor) -> Tensor:
    """``[rows, H, ...]`` as ``[H, rows + 1, ...]``: heads lead, so that every block gathers its
    matrices contiguous and batched over ``(H, count)``; the extra row is the zero that padding
    slots read (and the sink that padding slots scatter into)."""
    out = x.new_zeros(x.size(1), x.size(0) + 1, *x.shape[2:])
    out[:, :-1] = x.transpose(0, 1)
    return out


def _gather(x: Tensor, rows: Tensor, *shape: int) -> Tensor:
    """Rows of a head-major ``x`` at ``rows``, viewed ``[H, *shape, ...]``."""
    return x.index_select(1, rows).view(x.size(0), *shape, *x.shape[2:])


def _scatter(out: Tensor, rows: Tensor, x: Tensor, add: bool = True) -> None:
    """``out[rows[i]] += x[:, i]`` for a row-major ``out [R, H * D]`` and head-major ``x [H, S,
    D]`` (rows of a 2-D tensor are the fast scatter on CPU; one transposing copy pays).
    ``add=False`` copies instead, for rows that no other slot writes (padding slots write the
    sink row, whatever lands there)."""
    x = x.transpose(0, 1).reshape(rows.numel(), -1)
    if add:
        out.index_add_(0, rows, x)
    else:
        out.index_copy_(0, rows, x)


class _Inputs:
    """The inputs in head-major layout (see :func:`_head_major`), ``k`` and ``v`` side by side
    so that each block gathers them at once, and ``-T``, which the solves take."""

    def __init__(self, q, k, v, source, transition, mark):
        self.q, self.kv = _head_major(q), _head_major(torch.cat([k, v], -1))
        self.source, self.mark = _head_major(source), _head_major(mark)
        self.minus_t = _head_major(transition).neg_()


#: What :func:`_block_forward` returns and the backward reads, per block.
SAVED = ("minus_t", "x", "scores", "y", "q_dst", "kv", "mark")


def _block_forward(inputs: _Inputs, block: Block, key_dim: int) -> tuple:
    """``-T, X, scores, Y`` (``Y`` before the Mark gate) of one block, and its gathered
    ``Q_dst``, ``[K | V]`` and ``M`` (see :data:`SAVED`)."""
    c, e, n = block.count, block.num_edges, block.num_nodes
    minus_t = _gather(inputs.minus_t, block.transition_rows, c, e, e)
    # X = (I - T)^-1 diag(S) A_out; the unit diagonal is implied, not stored.
    x = torch.linalg.solve_triangular(minus_t, _gather(inputs.source, block.source_rows, c, e, n),
                                      upper=False, unitriangular=True)
    q_dst, kv = _gather(inputs.q, block.dst_rows, c, e), _gather(inputs.kv, block.node_rows, c, n)
    scores = q_dst @ kv[..., :key_dim].transpose(-1, -2)
    y = (x * scores) @ kv[..., key_dim:]
    return minus_t, x, scores, y, q_dst, kv, _gather(inputs.mark, block.edge_rows, c, e, 1)


def parallel_forward(q, k, v, source, transition, mark, blocks: list[Block]):
    """Edge part of the output ``[N, H, V]`` and, per block, what :data:`SAVED` names."""
    inputs = _Inputs(q, k, v, source, transition, mark)
    out = q.new_zeros(q.size(0) + 1, q.size(1) * v.size(-1))
    saved = []
    for block in blocks:
        saved.append(_block_forward(inputs, block, k.size(-1)))
        y, mark_b = saved[-1][3], saved[-1][6]
        _scatter(out, block.dst_rows, (mark_b * y).flatten(1, 2))
    return out[:-1].view(q.size(0), q.size(1), v.size(-1)), saved


def parallel_backward(grad_out, q, k, v, source, transition, mark, blocks: list[Block],
                      saved: list | None = None):
    """Gradients of the edge part w.r.t. ``q, k, v, source, transition, mark``; ``saved`` from
    :func:`parallel_forward`, or ``None`` to recompute it block by block."""
    heads, key_dim = q.shape[1:]
    inputs = _Inputs(q, k, v, source, transition, mark) if saved is None else None
    grad_out = _head_major(grad_out)
    # Row-major accumulators with a sink row for padding slots.
    dq, dk, dv = (x.new_zeros(x.size(0) + 1, math.prod(x.shape[1:])) for x in (q, k, v))
    d_mark = mark.new_zeros(mark.size(0) + 1, heads)
    d_source, d_transition = torch.zeros_like(source), torch.zeros_like(transition)
    for i, block in enumerate(blocks):
        minus_t, x, scores, y, q_dst, kv, mark_b = (
            _block_forward(inputs, block, key_dim) if saved is None else saved[i])
        k_b, v_b = kv[..., :key_dim], kv[..., key_dim:]
        dh = _gather(grad_out, block.dst_rows, block.count, block.num_edges)
        _scatter(d_mark, block.edge_rows, (y * dh).sum(-1).flatten(1)[..., None], add=False)
        dy = mark_b * dh
        d_a = dy @ v_b.transpose(-1, -2)
        _scatter(dv, block.node_rows, ((x * scores).transpose(-1, -2) @ dy).flatten(1, 2),
                 add=False)
        d_scores = d_a * x
        _scatter(dq, block.dst_rows, (d_scores @ k_b).flatten(1, 2))
        _scatter(dk, block.node_rows, (d_scores.transpose(-1, -2) @ q_dst).flatten(1, 2),
                 add=False)
        # dB = (I - T)^-T dX
        d_b = torch.linalg.solve_triangular(minus_t.transpose(-1, -2), d_a * scores, upper=True,
                                            unitriangular=True)
        d_source.index_copy_(0, block.edges,
                             d_b.reshape(heads, -1).index_select(1, block.source_slot).t())
        d_b, x = d_b.flatten(1, 2), x.flatten(1, 2)  # [H, count * num_edges, num_nodes]
        d_transition.index_copy_(0, block.lines, (d_b.index_select(1, block.line_out_slot)
                                                  * x.index_select(1, block.line_in_slot)).sum(-1).t())
    return (*(g[:-1].view_as(x) for g, x in ((dq, q), (dk, k), (dv, v))), d_source, d_transition,
            d_mark[:-1])


class ParallelPLSTM(torch.autograd.Function):
    """pLSTM by the gating-matrix form, the direct term included, with the explicit backward of
    :func:`parallel_backward` and :func:`~.naive.direct_backward`; ``recompute=True`` keeps only
    the inputs between the passes."""

    @staticmethod
    def forward(ctx, q, k, v, source, transition, mark, direct, blocks: list, recompute: bool):
        out, saved = parallel_forward(q, k, v, source, transition, mark, blocks)
        ctx.blocks, ctx.recompute = blocks, recompute
        ctx.save_for_backward(q, k, v, source, transition, mark, direct,
                              *(() if recompute else (x for block in saved for x in block)))
        return out.add_(direct_term(q, k, v, direct))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        q, k, v, source, transition, mark, direct, *flat = ctx.saved_tensors
        step = len(SAVED)
        saved = None if ctx.recompute else [flat[i:i + step] for i in range(0, len(flat), step)]
        grad_out = grad_out.contiguous()
        with torch.autocast(grad_out.device.type, enabled=False):  # as in forward (dispatch)
            dq, dk, dv, *gates = parallel_backward(grad_out, q, k, v, source, transition, mark,
                                                   ctx.blocks, saved)
            dq_d, dk_d, dv_d, d_direct = direct_backward(grad_out, q, k, v, direct)
        return dq.add_(dq_d), dk.add_(dk_d), dv.add_(dv_d), *gates, d_direct, None, None


def plstm_parallel(q, k, v, source, transition, mark, direct, graph: LineGraph,
                   recompute: bool = False) -> Tensor:
    """pLSTM by the gating-matrix form, one padded batch of graphs at a time."""
    out = ParallelPLSTM.apply(q, k, v, source, transition, mark, direct, blocks_of(graph),
                              recompute)
    if not bool(torch.isfinite(out.sum())):  # one reduction: NaN and inf survive a sum
        return plstm_levels(q, k, v, source, transition, mark, direct, graph, recompute)
    return out
