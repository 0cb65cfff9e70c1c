"""Readable references for the pLSTM operator (the oracles the fast kernels are tested against).

``plstm_reference`` follows the recurrence of SPEC section 1 literally, one DAG edge at a time
in topological order::

    C_e = S_e k_{src e} v_{src e}^T + sum_{(e' -> e)} T_{e' -> e} C_{e'}
    h_n = sum_{e: dst e = n} M_e C_e^T q_n + D_n (q_n . k_n) v_n

``plstm_dense`` evaluates the equivalent gating-matrix form, independent of any ordering::

    G = A_in diag(M) (I - T)^-1 diag(S) A_out + diag(D),   h_n = sum_m G[n, m] (q_n . k_m) v_m
"""
import torch
from torch import Tensor


def direct_term(q: Tensor, k: Tensor, v: Tensor, direct: Tensor) -> Tensor:
    """``D_n (q_n . k_n) v_n``: ``[N, H, V]``."""
    return (direct * (q * k).sum(-1)).unsqueeze(-1) * v


def direct_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, direct: Tensor):
    """Gradients of ``<direct_term(q, k, v, direct), grad_out>`` w.r.t. ``q, k, v, direct``
    (for kernels with an explicit backward)."""
    score = (q * k).sum(-1)  # q_n . k_n
    read = (grad_out * v).sum(-1)  # dh_n . v_n
    d_score = (direct * read).unsqueeze(-1)
    return d_score * k, d_score * q, (direct * score).unsqueeze(-1) * grad_out, score * read


def plstm_reference(q, k, v, source, transition, mark, direct, graph,
                    recompute: bool = False) -> Tensor:
    """The recurrence, one DAG edge at a time (``recompute`` is unused: autograd keeps what it
    needs)."""
    src, dst = graph.edge_index.tolist()
    incoming = [[] for _ in range(graph.num_edges)]  # (line edge, predecessor) per line node
    for line, (e_in, e_out) in enumerate(graph.line_index.t().tolist()):
        incoming[e_out].append((line, e_in))

    cells = [None] * graph.num_edges
    for e in torch.sort(graph.edge_level, stable=True).indices.tolist():
        cell = source[e, :, None, None] * k[src[e], :, :, None] * v[src[e], :, None, :]
        for line, pred in incoming[e]:
            cell = cell + transition[line, :, None, None] * cells[pred]
        cells[e] = cell

    out = direct_term(q, k, v, direct)
    for e in range(graph.num_edges):
        readout = mark[e, :, None] * torch.einsum("hk,hkv->hv", q[dst[e]], cells[e])
        out = out.index_add(0, torch.tensor([dst[e]], device=q.device), readout[None])
    return out


def plstm_dense(q, k, v, source, transition, mark, direct, graph, recompute: bool = False) -> Tensor:
    """The gating-matrix form over the whole batch at once: ``O(E^2)`` memory, for checks
    (``recompute`` is unused). Its structural zeros meet every value of the batch (``0 * NaN``)
    and a non-finite ``I - T`` has no LU factorisation, so non-finite inputs or outputs are
    left to the recurrence, which puts NaN only where the data flow takes it."""
    if not all(bool(torch.isfinite(x).all()) for x in (q, k, v, source, transition, mark, direct)):
        return plstm_reference(q, k, v, source, transition, mark, direct, graph)
    num_nodes, num_edges, heads = q.size(0), graph.num_edges, q.size(1)
    eye = torch.eye(num_nodes, dtype=q.dtype, device=q.device)
    a_out = eye[graph.edge_index[0]]  # [E, N]: A_out[e, n] = [src e == n]
    a_in = eye[graph.edge_index[1]].t()  # [N, E]: A_in[n, e] = [dst e == n]
    t = q.new_zeros(heads, num_edges, num_edges)
    t[:, graph.line_index[1], graph.line_index[0]] = transition.t()  # C = T C + ...
    propagate = torch.linalg.solve(torch.eye(num_edges, dtype=q.dtype, device=q.device) - t,
                                   source.t()[:, :, None] * a_out)  # (I - T)^-1 diag(S) A_out
    gate = a_in @ (mark.t()[:, :, None] * propagate) + torch.diag_embed(direct.t())  # [H, N, N]
    out = torch.einsum("hnm,nhk,mhk,mhv->nhv", gate, q, k, v)
    if not bool(torch.isfinite(out).all()):
        return plstm_reference(q, k, v, source, transition, mark, direct, graph)
    return out
