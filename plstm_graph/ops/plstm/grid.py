"""pLSTM on grid line graphs (:class:`~plstm_graph.graph.grid.GridLineGraph`): the paper's 2D
recurrence swept as a diagonal wavefront over the grid's fixed structure.

In corner coordinates (the DAG's corner at ``(0, 0)``, edges pointing right and down) every node
``(r, c)`` has at most one horizontal and one vertical input and output edge, so the cell states
are two grids, ``R[r, c]`` (edge ``(r, c) -> (r, c + 1)``) and ``D[r, c]`` (edge
``(r, c) -> (r + 1, c)``), and SPEC's recurrence becomes the 2D pLSTM of the paper::

    R[r, c] = S_r k v^T + T_rr R[r, c - 1] + T_dr D[r - 1, c]      (gates and k, v at (r, c))
    D[r, c] = S_d k v^T + T_rd R[r, c - 1] + T_dd D[r - 1, c]
    h[r, c] = q^T (M_r[r, c - 1] R[r, c - 1] + M_d[r - 1, c] D[r - 1, c]) + D_n (q . k) v

``T_xy`` is the transition from a node's ``x`` input to its ``y`` output (missing at the border
and where D-mode pruned it). Nodes on one anti-diagonal ``r + c = d`` depend only on diagonal
``d - 1``, so positions are numbered diagonal by diagonal: each diagonal, and the left and
upper neighbours of its nodes, are contiguous slices. The forward sweep takes one diagonal at
a time (for every grid and head of the batch at once) and does everything that touches it:
its source terms, the transitions into it, and the readout of the previous diagonal's states
by its nodes. Backward sweeps the diagonals the other way with the adjoint recurrence

    dR[r, c] = M_r q dh^T|_(r, c+1) + T_rr dR[r, c + 1] + T_rd dD[r, c + 1]
    dD[r, c] = M_d q dh^T|_(r+1, c) + T_dr dR[r + 1, c] + T_dd dD[r + 1, c]

and takes every gradient that involves a diagonal while it is at hand. So each ``[K, V]``
state is written once and then read while it is still in cache: there are no index gathers or
scatters inside the sweep and no whole-batch passes over the ``[E, H, K, V]`` states, which is
what makes this faster than the ``levels`` kernel on the same graph.

Only transitions that exist are applied (runs of present line edges along each diagonal), so
D-mode skips what it pruned and a NaN reaches exactly what it reaches in the reference.
:func:`plstm_grid_reference` is the same 2D recurrence as a readable node-by-node loop; both are
tested against the DAG reference.
"""
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ...graph.grid import GridLineGraph, corner_coordinates
from .dispatch import register_backend
from .naive import direct_term

#: Transition kinds, input direction then output direction (r = horizontal, d = vertical).
KINDS = ("rr", "rd", "dr", "dd")


@dataclass(frozen=True, eq=False)
class Diagonal:
    """Slices of one anti-diagonal ``d`` in the position order (all contiguous).

    ``left`` / ``top``: ``(dst, src)``: the nodes of ``d`` with a left / upper neighbour and
    those neighbours on ``d - 1`` (``None`` if there are none); ``kinds``: per transition kind,
    runs ``(dst, src)`` of nodes whose transition exists.
    """

    block: slice
    left: tuple | None
    top: tuple | None
    kinds: tuple


@dataclass(frozen=True, eq=False)
class GridLayout:
    """Where every node, edge and line edge of a :class:`GridLineGraph` sits in the kernel's
    layout: grid ``b``'s node at position ``p`` (diagonal by diagonal, corner coordinates) is
    slot ``p * count + b``. Missing edges point at ``num_edges``, missing line edges at
    ``num_line_edges`` (a zero row appended to the gates)."""

    height: int
    width: int
    count: int
    position: Tensor  # [height, width] position of each node (corner coordinates)
    slot: Tensor  # [N] slot of each node
    node: Tensor  # [N] node at each slot
    right: Tensor  # [N] edge leaving each slot to the right (R), or num_edges
    down: Tensor  # [N] edge leaving each slot downwards (D), or num_edges
    transitions: Tensor  # [4, N] line edge of each kind (KINDS) at each slot, or num_line_edges
    diagonals: tuple  # Diagonal per d = 0 .. height + width - 2


def _diagonals(present: list, height: int, width: int) -> tuple:
    """:class:`Diagonal` slices from ``present[kind][r][c]`` (corner coordinates)."""
    first = [max(0, d - width + 1) for d in range(height + width - 1)]
    start = [0]
    for d in range(height + width - 1):
        start.append(start[-1] + min(height - 1, d) - first[d] + 1)

    def at(d: int, row: int) -> int:
        return start[d] + row - first[d]

    def span(d: int, lo: int, hi: int, row_shift: int) -> tuple | None:
        """``(dst, src)`` for rows ``lo..hi`` of ``d``, the sources ``row_shift`` rows up."""
        if lo > hi:
            return None
        return (slice(at(d, lo), at(d, hi) + 1),
                slice(at(d - 1, lo - row_shift), at(d - 1, hi - row_shift) + 1))

    diagonals = []
    for d in range(height + width - 1):
        last = min(height - 1, d)
        left_rows = (first[d], min(last, d - 1))  # column >= 1
        top_rows = (max(first[d], 1), last)  # row >= 1
        kinds = []
        for kind, row_shift in zip(present, (0, 0, 1, 1)):
            lo, hi = left_rows if row_shift == 0 else top_rows
            runs, run = [], None
            for row in range(lo, hi + 1):
                if kind[row][d - row]:
                    run = [row, row] if run is None else [run[0], row]
                elif run is not None:
                    runs.append(span(d, *run, row_shift))
                    run = None
            if run is not None:
                runs.append(span(d, *run, row_shift))
            kinds.append(tuple(runs))
        diagonals.append(Diagonal(slice(start[d], start[d + 1]),
                                  span(d, *left_rows, 0) if d else None,
                                  span(d, *top_rows, 1) if d else None, tuple(kinds)))
    return tuple(diagonals)


def grid_layout(graph: GridLineGraph) -> GridLayout:
    """The :class:`GridLayout` of ``graph`` (cached on it by :func:`plstm_grid`)."""
    height, width, count = graph.height, graph.width, graph.count
    size, device = height * width, graph.edge_index.device
    # Position of every (r, c) of the corner grid (row-major), diagonal by diagonal.
    r, c = corner_coordinates(height, width, "top-left", device)
    lengths = torch.bincount(r + c, minlength=height + width - 1)
    position = (torch.cumsum(lengths, 0) - lengths)[r + c] + r - (r + c - width + 1).clamp(min=0)
    rows, cols = corner_coordinates(height, width, graph.corner, device)  # of every node
    nodes = torch.arange(graph.num_nodes, device=device)
    slot = position[rows * width + cols][nodes % size] * count + nodes // size
    node = torch.empty_like(slot).scatter_(0, slot, nodes)

    src, dst = graph.edge_index
    vertical = rows[dst % size] > rows[src % size]
    edges = torch.arange(graph.num_edges, device=device)
    right = torch.full_like(slot, graph.num_edges).scatter_(0, slot[src[~vertical]], edges[~vertical])
    down = torch.full_like(slot, graph.num_edges).scatter_(0, slot[src[vertical]], edges[vertical])

    e_in, e_out = graph.line_index
    kind = 2 * vertical[e_in].long() + vertical[e_out].long()
    transitions = torch.full((4 * graph.num_nodes,), graph.num_line_edges, dtype=torch.long,
                             device=device)
    transitions[kind * graph.num_nodes + slot[src[e_out]]] = torch.arange(graph.num_line_edges,
                                                                          device=device)
    transitions = transitions.view(4, graph.num_nodes)
    present = (transitions < graph.num_line_edges).view(4, size, count).cpu()
    if not bool((present == present[..., :1]).all()):
        raise ValueError("graph: the grids of a GridLineGraph batch must share one structure")
    present = present[..., 0][:, position.cpu()].view(4, height, width).tolist()  # [kind][r][c]
    position = position.view(height, width)
    return GridLayout(height, width, count, position, slot, node, right, down, transitions,
                      _diagonals(present, height, width))


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """``x[index]`` with ``index == len(x)`` reading a zero row (a missing edge's gate)."""
    return torch.cat([x, x.new_zeros(1, *x.shape[1:])]).index_select(0, index)


# ---------------------------------------------------------------------------------------------
# The sweeps on the layout: q, k [P, B, K], v [P, B, V] with P = height * width positions and
# B = count * heads columns; gates [P, B] (transitions [4, P, B]); states [P, B, K, V].
# In-cache products: element-wise multiply and sum beat batched matmuls of [1, K] x [K, V].
# ---------------------------------------------------------------------------------------------


def _read(q: Tensor, state: Tensor) -> Tensor:
    """``q^T C``: ``[..., K] x [..., K, V] -> [..., V]``."""
    return (q[..., None] * state).sum(-2)


def _apply(state: Tensor, v: Tensor) -> Tensor:
    """``C v``: ``[..., K, V] x [..., V] -> [..., K]``."""
    return (state * v[..., None, :]).sum(-1)


def grid_forward(q, k, v, s_r, s_d, m_r, m_d, t, layout: GridLayout):
    """Edge part of the output ``[P, B, V]`` and the states ``R, D`` ``[P, B, K, V]``."""
    right = q.new_empty(*k.shape, v.size(-1))
    down = torch.empty_like(right)
    out = q.new_zeros(*q.shape[:-1], v.size(-1))
    sk_r, sk_d = s_r[..., None] * k, s_d[..., None] * k
    t = t[..., None, None]
    for diag in layout.diagonals:
        block = diag.block
        torch.mul(sk_r[block, ..., None], v[block, :, None, :], out=right[block])
        torch.mul(sk_d[block, ..., None], v[block, :, None, :], out=down[block])
        # (input, output) state of each kind: rr, rd read R; dr, dd read D.
        for (inflow, outflow), t_kind, runs in zip(
                ((right, right), (right, down), (down, right), (down, down)), t, diag.kinds):
            for dst, src in runs:
                outflow[dst].addcmul_(t_kind[dst], inflow[src])
        for states, marks, pair in ((right, m_r, diag.left), (down, m_d, diag.top)):
            if pair is not None:
                dst, src = pair
                out[dst] += _read(q[dst] * marks[src, :, None], states[src])
    return out, right, down


def grid_backward(dh, q, k, v, s_r, s_d, m_r, m_d, t, right, down, layout: GridLayout):
    """Gradients of :func:`grid_forward`'s output for the cotangent ``dh``:
    ``(dq, dk, dv, ds_r, ds_d, dm_r, dm_d, dt)``."""
    d_right, d_down = torch.zeros_like(right), torch.zeros_like(down)
    dq, dk, dv = torch.zeros_like(q), torch.empty_like(k), torch.empty_like(v)
    ds_r, ds_d = torch.empty_like(s_r), torch.empty_like(s_d)
    dm_r, dm_d, dt = torch.zeros_like(m_r), torch.zeros_like(m_d), torch.zeros_like(t)
    t_ = t[..., None, None]
    diagonals = layout.diagonals
    for d in reversed(range(len(diagonals))):
        block = diagonals[d].block
        if d + 1 < len(diagonals):
            after = diagonals[d + 1]
            # Readout of this diagonal's states by the next one's nodes.
            for states, d_states, marks, d_marks, pair in (
                    (right, d_right, m_r, dm_r, after.left), (down, d_down, m_d, dm_d, after.top)):
                if pair is not None:
                    dst, src = pair
                    d_states[src].addcmul_((marks[src, :, None] * q[dst])[..., None],
                                           dh[dst, :, None, :])
                    state_dh = _apply(states[src], dh[dst])
                    d_marks[src] = (state_dh * q[dst]).sum(-1)
                    dq[dst] += marks[src, :, None] * state_dh
            # Transitions into the next diagonal: their gradients, and the adjoint flow back.
            for i, ((inflow, d_inflow, d_outflow), t_kind, runs) in enumerate(zip(
                    ((right, d_right, d_right), (right, d_right, d_down),
                     (down, d_down, d_right), (down, d_down, d_down)), t_, after.kinds)):
                for dst, src in runs:
                    dt[i, dst] = (d_outflow[dst] * inflow[src]).sum((-2, -1))
                    d_inflow[src].addcmul_(t_kind[dst], d_outflow[dst])
        # This diagonal's gradients are complete: the source terms S k v^T.
        dr_v, dd_v = _apply(d_right[block], v[block]), _apply(d_down[block], v[block])
        ds_r[block] = (dr_v * k[block]).sum(-1)
        ds_d[block] = (dd_v * k[block]).sum(-1)
        dk[block] = s_r[block, :, None] * dr_v + s_d[block, :, None] * dd_v
        dv[block] = (_read(s_r[block, :, None] * k[block], d_right[block])
                     + _read(s_d[block, :, None] * k[block], d_down[block]))
    return dq, dk, dv, ds_r, ds_d, dm_r, dm_d, dt


class GridPLSTM(torch.autograd.Function):
    """The edge part of pLSTM on the grid layout, with the explicit backward above.

    With ``recompute=True`` the states ``R, D`` are swept again in backward instead of kept.
    """

    @staticmethod
    def forward(ctx, q, k, v, s_r, s_d, m_r, m_d, t, layout: GridLayout, recompute: bool):
        out, right, down = grid_forward(q, k, v, s_r, s_d, m_r, m_d, t, layout)
        ctx.layout, ctx.recompute = layout, recompute
        ctx.save_for_backward(q, k, v, s_r, s_d, m_r, m_d, t,
                              *(() if recompute else (right, down)))
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, dh):
        q, k, v, s_r, s_d, m_r, m_d, t, *states = ctx.saved_tensors
        if ctx.recompute:
            states = grid_forward(q, k, v, s_r, s_d, m_r, m_d, t, ctx.layout)[1:]
        grads = grid_backward(dh.contiguous(), q, k, v, s_r, s_d, m_r, m_d, t, *states,
                              ctx.layout)
        return (*grads, None, None)


def _to_layout(q, k, v, source, transition, mark, layout: GridLayout):
    """Inputs in the layout (``[P, count * heads, ...]``); autograd carries the gathers."""
    positions = layout.height * layout.width
    nodes = [x.index_select(0, layout.node).view(positions, -1, x.size(-1)) for x in (q, k, v)]
    edges = [_gather(x, index).view(positions, -1)
             for x in (source, mark) for index in (layout.right, layout.down)]
    t = _gather(transition, layout.transitions.view(-1)).view(4, positions, -1)
    return nodes, edges, t


def _from_layout(out: Tensor, layout: GridLayout, heads: int) -> Tensor:
    return out.reshape(-1, heads, out.size(-1)).index_select(0, layout.slot)


def plstm_grid(q, k, v, source, transition, mark, direct, graph: GridLineGraph,
               recompute: bool = False) -> Tensor:
    """pLSTM on a :class:`GridLineGraph` by the diagonal wavefront (the ``"grid"`` backend)."""
    if not isinstance(graph, GridLineGraph):
        raise ValueError(f"graph must be a GridLineGraph for the grid backend, got "
                         f"{type(graph).__name__}")
    layout = graph.cached("grid_layout", grid_layout)
    (qg, kg, vg), (s_r, s_d, m_r, m_d), t = _to_layout(q, k, v, source, transition, mark, layout)
    out = GridPLSTM.apply(qg, kg, vg, s_r, s_d, m_r, m_d, t, layout, recompute)
    return _from_layout(out, layout, q.size(1)) + direct_term(q, k, v, direct)


def plstm_grid_reference(q, k, v, source, transition, mark, direct, graph: GridLineGraph,
                         recompute: bool = False) -> Tensor:
    """The 2D recurrence of the module docstring, node by node in row-major corner order."""
    layout = grid_layout(graph)
    (qg, kg, vg), (s_r, s_d, m_r, m_d), t = _to_layout(q, k, v, source, transition, mark, layout)
    t_rr, t_rd, t_dr, t_dd = (x[..., None, None] for x in t)
    at = layout.position.tolist()
    right, down, out = {}, {}, {}
    for r in range(layout.height):
        for c in range(layout.width):
            p = at[r][c]
            kv = kg[p, :, :, None] * vg[p, :, None, :]
            memory = torch.zeros_like(kv)
            left = up = 0
            if c > 0:
                left = right[r, c - 1]
                memory = memory + m_r[at[r][c - 1], :, None, None] * left
            if r > 0:
                up = down[r - 1, c]
                memory = memory + m_d[at[r - 1][c], :, None, None] * up
            out[p] = torch.einsum("bk,bkv->bv", qg[p], memory)
            right[r, c] = s_r[p, :, None, None] * kv + t_rr[p] * left + t_dr[p] * up
            down[r, c] = s_d[p, :, None, None] * kv + t_rd[p] * left + t_dd[p] * up
    out = torch.stack([out[p] for p in range(len(out))])
    return _from_layout(out, layout, q.size(1)) + direct_term(q, k, v, direct)


register_backend("grid", plstm_grid, auto_for=lambda graph: isinstance(graph, GridLineGraph))
