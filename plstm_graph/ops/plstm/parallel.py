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

At molecule size the cost is the number of operator calls, not their arithmetic: every input
is therefore gathered once for all blocks (one ``index_select`` each, or one put of the sparse
gates into zeroed blocks) into buffers laid out block after block (:class:`~.blocks.Layout`);
per block only the solve and the batched products run, writing into slices of those buffers
(``out=``), and each gradient comes back with one gather (one ``index_add_`` for ``q``). A
forward + backward makes about 70 operator calls plus 12 per block (129 on the 128 molecules of
``benchmarks/plstm_bench.py`` in 5 blocks; 223 when every block gathered and scattered its own).

The form multiplies structural zeros (padding, unreachable pairs, the zeros of ``I - T``) with
every value of a graph, so one NaN or inf input would reach all of that graph (``0 * NaN``);
when the output is not finite it is therefore recomputed by the level sweep, which follows the
recurrence's data flow and leaves NaN only where the reference puts it.
"""
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ...graph.line_graph import LineGraph
from .blocks import Layout, layout_of
from .levels import plstm_levels
from .naive import direct_backward, direct_term


def _flat_rows(x: Tensor) -> Tensor:
    """``[rows, H, D]`` as ``[(rows + 1) * H, D]`` with a zero row appended: what the gather
    maps of a :class:`~.blocks.Layout` index (padding slots read the zero row)."""
    out = x.new_empty(x.size(0) + 1, *x.shape[1:])
    out[-1], out[:-1] = 0, x
    return out.flatten(0, 1)


def _dense(values: Tensor, slots: Tensor, size: int) -> Tensor:
    """A zero buffer of ``size`` elements with ``values`` put at ``slots`` (same shape): the
    sparse gates scattered into their padded blocks."""
    return values.new_zeros(size).index_put_((slots,), values)


#: What :func:`parallel_forward` keeps for the backward, each one buffer for all blocks.
SAVED = ("q_dst", "kv", "mark", "x", "scores", "a", "y")


def parallel_forward(q, k, v, source, transition, mark, layout: Layout):
    """Edge part of the output ``[N, H, V]`` and the buffers :data:`SAVED` names.

    Every input is gathered (or put) once for all blocks; per block only the solve and the
    three products run, each writing into its block's slice of a shared buffer."""
    num_nodes, heads, key_dim = q.shape
    qkv = q.new_empty(num_nodes + 1, heads, key_dim * 2 + v.size(-1))
    qkv[-1] = 0  # the row padding slots read
    torch.cat([q, k, v], -1, out=qkv[:-1])  # one copy of the inputs, not two
    qkv = qkv.flatten(0, 1)
    q_dst = qkv[:, :key_dim].index_select(0, layout.dst)  # [sum H c E, K]
    kv = qkv[:, key_dim:].index_select(0, layout.node)  # [sum H c N, K + V]
    minus_t = _dense(transition.neg(), layout.transition_of, sum(layout.sizes["EE"]))
    # X = (I - T)^-1 diag(S) A_out, solved in place of diag(S) A_out; the unit diagonal of
    # I - T is implied, not stored.
    x = _dense(source, layout.source_of, sum(layout.sizes["EN"]))
    scores, a = torch.empty_like(x), torch.empty_like(x)
    y = q.new_empty(q_dst.size(0), v.size(-1))
    blocks = zip(layout.split(minus_t, "EE"), layout.split(x, "EN"), layout.split(scores, "EN"),
                 layout.split(a, "EN"), layout.split(q_dst, "E"), layout.split(kv, "N"),
                 layout.split(y, "E"))
    for minus_t_b, x_b, scores_b, a_b, q_b, kv_b, y_b in blocks:
        torch.linalg.solve_triangular(minus_t_b, x_b, upper=False, unitriangular=True, out=x_b)
        torch.bmm(q_b, kv_b[..., :key_dim].transpose(1, 2), out=scores_b)  # Q_dst K^T
        torch.bmm(torch.mul(x_b, scores_b, out=a_b), kv_b[..., key_dim:], out=y_b)  # Y = A V
    mark_e = _dense(mark, layout.edge_of, y.size(0))[:, None]
    out = q.new_zeros((num_nodes + 1) * heads, v.size(-1)).index_add_(0, layout.dst, mark_e * y)
    out = out[:num_nodes * heads].view(num_nodes, heads, v.size(-1))
    return out, (q_dst, kv, mark_e, x, scores, a, y)


def parallel_backward(grad_out, q, k, v, source, transition, mark, layout: Layout,
                      saved: tuple | None = None):
    """Gradients of the edge part w.r.t. ``q, k, v, source, transition, mark``; ``saved`` from
    :func:`parallel_forward`, or ``None`` to recompute it."""
    num_nodes, heads, key_dim = q.shape
    if saved is None:
        saved = parallel_forward(q, k, v, source, transition, mark, layout)[1]
    q_dst, kv, mark_e, x, scores, a, y = saved
    dh = _flat_rows(grad_out).index_select(0, layout.dst)  # [sum H c E, V]
    d_mark = (y * dh).sum(-1).take(layout.edge_of)
    dy = mark_e * dh
    # The transposed solve reads -T^T laid out contiguous (a transposed view is slower).
    minus_t_t = _dense(transition.neg(), layout.transition_t_of, sum(layout.sizes["EE"]))
    # Node-slot buffers end with a zero row: nodes that start no edge read it.
    dk, dv = (q.new_empty(kv.size(0) + 1, size) for size in (key_dim, v.size(-1)))
    dk[-1], dv[-1] = 0, 0
    dq, d_b, d_t = torch.empty_like(q_dst), torch.empty_like(x), torch.empty_like(minus_t_t)
    blocks = zip(layout.split(minus_t_t, "EE"), layout.split(x, "EN"),
                 layout.split(scores, "EN"), layout.split(a, "EN"), layout.split(q_dst, "E"),
                 layout.split(kv, "N"), layout.split(dy, "E"), layout.split(dq, "E"),
                 layout.split(dk[:-1], "N"), layout.split(dv[:-1], "N"),
                 layout.split(d_b, "EN"), layout.split(d_t, "EE"))
    for minus_t_t_b, x_b, scores_b, a_b, q_b, kv_b, dy_b, dq_b, dk_b, dv_b, d_b_b, d_t_b in blocks:
        k_b, v_b = kv_b[..., :key_dim], kv_b[..., key_dim:]
        d_a = torch.bmm(dy_b, v_b.transpose(1, 2))  # dA = dY V^T
        torch.bmm(a_b.transpose(1, 2), dy_b, out=dv_b)  # dV = A^T dY
        d_scores = d_a * x_b
        torch.bmm(d_scores, k_b, out=dq_b)  # dQ_dst = (dA * X) K
        torch.bmm(d_scores.transpose(1, 2), q_b, out=dk_b)  # dK = (dA * X)^T Q_dst
        # dB = (I - T)^-T dX with dX = dA * scores, in place; dT = dB X^T
        torch.linalg.solve_triangular(minus_t_t_b, torch.mul(d_a, scores_b, out=d_b_b),
                                      upper=True, unitriangular=True, out=d_b_b)
        torch.bmm(d_b_b, x_b.transpose(1, 2), out=d_t_b)
    d_q = q.new_zeros((num_nodes + 1) * heads, key_dim).index_add_(0, layout.dst, dq)
    node_of = layout.node_of.flatten()
    return (d_q[:num_nodes * heads].view_as(q), dk.index_select(0, node_of).view_as(k),
            dv.index_select(0, node_of).view_as(v), d_b.take(layout.source_of),
            d_t.take(layout.transition_of), d_mark)


class ParallelPLSTM(torch.autograd.Function):
    """pLSTM by the gating-matrix form, the direct term included, with the explicit backward of
    :func:`parallel_backward` and :func:`~.naive.direct_backward`; ``recompute=True`` keeps only
    the inputs between the passes."""

    @staticmethod
    def forward(ctx, q, k, v, source, transition, mark, direct, layout: Layout, recompute: bool):
        out, saved = parallel_forward(q, k, v, source, transition, mark, layout)
        ctx.layout, ctx.recompute = layout, recompute
        ctx.save_for_backward(q, k, v, source, transition, mark, direct,
                              *(() if recompute else saved))
        return out.add_(direct_term(q, k, v, direct))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        q, k, v, source, transition, mark, direct, *saved = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        with torch.autocast(grad_out.device.type, enabled=False):  # as in forward (dispatch)
            dq, dk, dv, *gates = parallel_backward(grad_out, q, k, v, source, transition, mark,
                                                   ctx.layout, saved or None)
            dq_d, dk_d, dv_d, d_direct = direct_backward(grad_out, q, k, v, direct)
        return dq.add_(dq_d), dk.add_(dk_d), dv.add_(dv_d), *gates, d_direct, None, None


def plstm_parallel(q, k, v, source, transition, mark, direct, graph: LineGraph,
                   recompute: bool = False) -> Tensor:
    """pLSTM by the gating-matrix form, one padded batch of graphs at a time."""
    out = ParallelPLSTM.apply(q, k, v, source, transition, mark, direct,
                              layout_of(graph, q.size(1)), recompute)
    if not bool(torch.isfinite(out.sum())):  # one reduction: NaN and inf survive a sum
        return plstm_levels(q, k, v, source, transition, mark, direct, graph, recompute)
    return out
