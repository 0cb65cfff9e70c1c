"""Level-batched pLSTM: every line node of one level, across all graphs of a batch, at once.

Forward sweeps the levels upwards, backward sweeps them downwards with the adjoint recurrence
(``dC_e = M_e q_{dst e} dh_{dst e}^T + sum_{(e -> e'')} T_{e -> e''} dC_{e''}``), so the number of
sequential steps is the batch's line-graph depth, not its number of edges. Only the edge part
of the operator lives here; the direct term is a plain element-wise product (see ``naive.py``).
"""
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ...graph.line_graph import Schedule, Sweep


def _level_slices(plan: Schedule, sweep: Sweep, levels):
    """``(edge slice, line slice)`` of every level in ``levels`` that has line edges."""
    for level in levels:
        lines = slice(sweep.ptr[level], sweep.ptr[level + 1])
        if lines.start < lines.stop:
            yield slice(plan.edge_ptr[level], plan.edge_ptr[level + 1]), lines


def _cells(k: Tensor, v: Tensor, source: Tensor, transition: Tensor, plan: Schedule) -> Tensor:
    """Cell states ``[E, H, K, V]`` in the schedule's edge order (``source`` permuted to it,
    ``transition`` to the forward sweep's order)."""
    sweep = plan.forward
    cells = source[:, :, None, None] * k[plan.src, :, :, None] * v[plan.src, :, None, :]
    for edges, lines in _level_slices(plan, sweep, range(1, plan.num_levels)):
        inflow = transition[lines, :, None, None] * cells[sweep.other[lines]]
        cells[edges].index_add_(0, sweep.local[lines], inflow)
    return cells


class LevelsPLSTM(torch.autograd.Function):
    """Edge part of pLSTM, ``h_n = sum_{e: dst e = n} M_e C_e^T q_n``, with an explicit backward.

    With ``recompute=True`` the cell states are not kept between forward and backward but swept
    again in backward, trading one more forward sweep for ``E * H * K * V`` saved numbers.
    """

    @staticmethod
    def forward(ctx, q, k, v, source, transition, mark, plan: Schedule, recompute: bool):
        source_p, mark_p = source[plan.edge_perm], mark[plan.edge_perm]
        cells = _cells(k, v, source_p, transition[plan.forward.perm], plan)
        readout = torch.einsum("ehk,ehkv->ehv", q[plan.dst], cells) * mark_p[..., None]
        out = q.new_zeros(q.size(0), q.size(1), v.size(-1)).index_add_(0, plan.dst, readout)
        ctx.plan, ctx.recompute = plan, recompute
        ctx.save_for_backward(q, k, v, source_p, transition, mark_p,
                              *(() if recompute else (cells,)))
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        plan: Schedule = ctx.plan
        q, k, v, source_p, transition, mark_p, *stored = ctx.saved_tensors
        cells = (_cells(k, v, source_p, transition[plan.forward.perm], plan) if ctx.recompute
                 else stored[0])
        q_dst, dh_dst = q[plan.dst], grad_out[plan.dst]
        k_src, v_src = k[plan.src], v[plan.src]

        # Adjoint sweep, deepest level first: when level l is reached, every line edge leaving
        # it points to a deeper, finished level.
        sweep = plan.backward
        transition_b = transition[sweep.perm]
        d_cells = mark_p[:, :, None, None] * q_dst[..., :, None] * dh_dst[..., None, :]
        d_transition_b = torch.zeros_like(transition_b)
        for edges, lines in _level_slices(plan, sweep, reversed(range(plan.num_levels))):
            d_target = d_cells[sweep.other[lines]]
            level_cells = cells[edges]
            d_transition_b[lines] = (d_target * level_cells[sweep.local[lines]]).sum((-2, -1))
            d_cells[edges].index_add_(0, sweep.local[lines],
                                      transition_b[lines, :, None, None] * d_target)

        dc_v = torch.einsum("ehkv,ehv->ehk", d_cells, v_src)  # dC_e v_src
        dc_k = torch.einsum("ehkv,ehk->ehv", d_cells, k_src)  # dC_e^T k_src
        c_dh = torch.einsum("ehkv,ehv->ehk", cells, dh_dst)  # C_e dh_dst
        d_source_p = (dc_v * k_src).sum(-1)
        d_mark_p = (c_dh * q_dst).sum(-1)
        dq = torch.zeros_like(q).index_add_(0, plan.dst, mark_p[..., None] * c_dh)
        dk = torch.zeros_like(k).index_add_(0, plan.src, source_p[..., None] * dc_v)
        dv = torch.zeros_like(v).index_add_(0, plan.src, source_p[..., None] * dc_k)

        d_source, d_mark = torch.empty_like(d_source_p), torch.empty_like(d_mark_p)
        d_source[plan.edge_perm], d_mark[plan.edge_perm] = d_source_p, d_mark_p
        d_transition = torch.empty_like(d_transition_b)
        d_transition[sweep.perm] = d_transition_b
        return dq, dk, dv, d_source, d_transition, d_mark, None, None


def plstm_levels_edges(q, k, v, source, transition, mark, graph, recompute: bool = False) -> Tensor:
    return LevelsPLSTM.apply(q, k, v, source, transition, mark, graph.schedule, recompute)
