"""Level-batched pLSTM: every line node of one level, across all graphs of a batch, at once.

Forward sweeps the levels upwards, backward sweeps them downwards with the adjoint recurrence

    dC_e = M_e q_{dst e} dh_{dst e}^T + sum_{(e -> e'')} T_{e -> e''} dC_{e''}

so the number of sequential steps is the batch's line-graph depth, not its number of edges.
:func:`levels_forward` and :func:`levels_backward` are plain functions; :class:`LevelsPLSTM`
only wires them into autograd.
"""
import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ...graph.line_graph import LineGraph
from .naive import direct_term
from .schedule import Schedule, Sweep, schedule_of


def _rows(tensor: Tensor, index: Tensor) -> Tensor:
    """``tensor[index]`` through a 2-D view: on CPU, row gathers and scatters of 2-D tensors
    are many times faster than the same on 3-D or 4-D tensors."""
    flat = tensor.reshape(tensor.size(0), math.prod(tensor.shape[1:]))
    return flat.index_select(0, index).view(index.numel(), *tensor.shape[1:])


def _add_rows_(tensor: Tensor, index: Tensor, rows: Tensor) -> Tensor:
    """``tensor.index_add_(0, index, rows)`` through 2-D views (see :func:`_rows`)."""
    width = math.prod(tensor.shape[1:])
    tensor.view(tensor.size(0), width).index_add_(0, index, rows.reshape(rows.size(0), width))
    return tensor


def _level_slices(plan: Schedule, sweep: Sweep, levels):
    """``(edge slice, line slice)`` of every level in ``levels`` that has line edges."""
    for level in levels:
        lines = slice(sweep.ptr[level], sweep.ptr[level + 1])
        if lines.start < lines.stop:
            yield slice(plan.edge_ptr[level], plan.edge_ptr[level + 1]), lines


def _cells(k: Tensor, v: Tensor, source_p: Tensor, transition: Tensor, plan: Schedule) -> Tensor:
    """Cell states ``[E, H, K, V]`` in the schedule's edge order (``source_p`` in that order)."""
    sweep = plan.forward
    transition_f = transition[sweep.perm]
    # One pass over [E, H, K, V]: scale the small factor first.
    cells = (source_p[..., None] * _rows(k, plan.src))[..., None] * _rows(v, plan.src)[..., None, :]
    for edges, lines in _level_slices(plan, sweep, range(1, plan.num_levels)):
        inflow = transition_f[lines, :, None, None] * _rows(cells, sweep.other[lines])
        _add_rows_(cells[edges], sweep.local[lines], inflow)
    return cells


def levels_forward(q: Tensor, k: Tensor, v: Tensor, source: Tensor, transition: Tensor,
                   mark: Tensor, plan: Schedule) -> tuple[Tensor, Tensor]:
    """Edge part of the output, ``h_n = sum_{e: dst e = n} M_e C_e^T q_n``, and the cell states
    ``[E, H, K, V]`` (in the schedule's edge order) that :func:`levels_backward` needs."""
    cells = _cells(k, v, source[plan.edge_perm], transition, plan)
    readout = torch.einsum("ehk,ehkv->ehv", _rows(q, plan.dst), cells) * mark[plan.edge_perm, :, None]
    out = _add_rows_(q.new_zeros(q.size(0), q.size(1), v.size(-1)), plan.dst, readout)
    return out, cells


def levels_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, source: Tensor,
                    transition: Tensor, mark: Tensor, plan: Schedule,
                    cells: Tensor | None = None) -> tuple[Tensor, ...]:
    """Gradients of the edge part w.r.t. ``q, k, v, source, transition, mark``; ``cells`` from
    :func:`levels_forward`, or ``None`` to sweep them again."""
    source_p, mark_p = source[plan.edge_perm], mark[plan.edge_perm]
    if cells is None:
        cells = _cells(k, v, source_p, transition, plan)
    q_dst, dh_dst = _rows(q, plan.dst), _rows(grad_out.contiguous(), plan.dst)
    k_src, v_src = _rows(k, plan.src), _rows(v, plan.src)

    # Adjoint sweep, deepest level first: when level l is reached, every line edge leaving
    # it points to a deeper, finished level.
    sweep = plan.backward
    transition_b = transition[sweep.perm]
    d_cells = (mark_p[..., None] * q_dst)[..., None] * dh_dst[..., None, :]
    d_transition_b = torch.zeros_like(transition_b)
    for edges, lines in _level_slices(plan, sweep, reversed(range(plan.num_levels))):
        d_target = _rows(d_cells, sweep.other[lines])
        source_cells = _rows(cells[edges], sweep.local[lines])
        d_transition_b[lines] = (d_target * source_cells).sum((-2, -1))
        _add_rows_(d_cells[edges], sweep.local[lines], transition_b[lines, :, None, None] * d_target)

    dc_v = torch.einsum("ehkv,ehv->ehk", d_cells, v_src)  # dC_e v_src
    dc_k = torch.einsum("ehkv,ehk->ehv", d_cells, k_src)  # dC_e^T k_src
    c_dh = torch.einsum("ehkv,ehv->ehk", cells, dh_dst)  # C_e dh_dst
    dq = _add_rows_(torch.zeros_like(q), plan.dst, mark_p[..., None] * c_dh)
    dk = _add_rows_(torch.zeros_like(k), plan.src, source_p[..., None] * dc_v)
    dv = _add_rows_(torch.zeros_like(v), plan.src, source_p[..., None] * dc_k)
    d_source, d_mark, d_transition = (torch.empty_like(x) for x in (source, mark, transition))
    d_source[plan.edge_perm] = (dc_v * k_src).sum(-1)
    d_mark[plan.edge_perm] = (c_dh * q_dst).sum(-1)
    d_transition[sweep.perm] = d_transition_b
    return dq, dk, dv, d_source, d_transition, d_mark


class LevelsPLSTM(torch.autograd.Function):
    """Edge part of pLSTM with the explicit backward of :func:`levels_backward`.

    With ``recompute=True`` the cell states are not kept between forward and backward but swept
    again in backward, trading one more forward sweep for ``E * H * K * V`` saved numbers.
    """

    @staticmethod
    def forward(ctx, q, k, v, source, transition, mark, plan: Schedule, recompute: bool):
        out, cells = levels_forward(q, k, v, source, transition, mark, plan)
        ctx.plan, ctx.recompute = plan, recompute
        ctx.save_for_backward(q, k, v, source, transition, mark, *(() if recompute else (cells,)))
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        q, k, v, source, transition, mark, *cells = ctx.saved_tensors
        with torch.autocast(grad_out.device.type, enabled=False):  # as in forward (dispatch)
            grads = levels_backward(grad_out, q, k, v, source, transition, mark, ctx.plan,
                                    cells[0] if cells else None)
        return *grads, None, None


def plstm_levels(q, k, v, source, transition, mark, direct, graph: LineGraph,
                 recompute: bool = False) -> Tensor:
    """pLSTM by the level sweep (the edge part through :class:`LevelsPLSTM`, the direct term by
    autograd)."""
    edges = LevelsPLSTM.apply(q, k, v, source, transition, mark, schedule_of(graph), recompute)
    return edges + direct_term(q, k, v, direct)
