"""pLSTM on grid line graphs (:class:`~plstm_graph.graph.grid.GridLineGraph`): the paper's 2D
recurrence swept as a diagonal wavefront over the grid's fixed structure.

In corner coordinates (the DAG's corner at ``(0, 0)``, edges pointing right and down) every node
``(r, c)`` has at most one horizontal and one vertical input and output edge, so the cell states
form one grid ``X[r, c, o]`` with ``o = 0`` the edge ``(r, c) -> (r, c + 1)`` (``R``) and
``o = 1`` the edge ``(r, c) -> (r + 1, c)`` (``D``), and SPEC's recurrence becomes the 2D pLSTM of
the paper::

    R[r, c] = S_r k v^T + T_rr R[r, c - 1] + T_dr D[r - 1, c]      (gates and k, v at (r, c))
    D[r, c] = S_d k v^T + T_rd R[r, c - 1] + T_dd D[r - 1, c]
    h[r, c] = q^T (M_r[r, c - 1] R[r, c - 1] + M_d[r - 1, c] D[r - 1, c]) + D_n (q . k) v

``T_xy`` is the transition from a node's ``x`` input to its ``y`` output (missing at the border
and where D-mode pruned it). Nodes on one anti-diagonal ``r + c = d`` depend only on diagonal
``d - 1``, so positions are numbered diagonal by diagonal: each diagonal, and the left and
upper neighbours of its nodes, are contiguous slices. The forward sweep takes one diagonal at
a time, for every grid and head of the batch at once: its source terms, the transitions into
it (both outputs of an input in one multiply-add), and the readout ``q^T C`` of its states
while they are in cache. Backward sweeps the diagonals the other way with the adjoint
recurrence

    dR[r, c] = M_r q dh^T|_(r, c+1) + T_rr dR[r, c + 1] + T_rd dD[r, c + 1]
    dD[r, c] = M_d q dh^T|_(r+1, c) + T_dr dR[r + 1, c] + T_dd dD[r + 1, c]

reducing each diagonal's ``[K, V]`` states and state gradients to the ``[K]``- and
``[V]``-sized pieces that every gate and input gradient needs. So each state is written once
and read while still in cache, with no index gathers or scatters inside the sweep (the
``levels`` kernel gathers and scatters every line edge's ``[K, V]`` state per level).

Only existing transitions are applied: runs of nodes whose input continues somewhere, so
D-mode skips the inputs it pruned and a NaN reaches exactly what it reaches in the reference.
States of edges that do not exist (beyond the border) may hold junk; nothing reads them.
:func:`plstm_grid_reference` is the same 2D recurrence as a readable node-by-node loop; both
are tested against the DAG reference.
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
    """One anti-diagonal ``d``: its positions ``block``, and runs ``(dst, src)`` of its nodes
    whose left (``left``) or upper (``top``) input continues, with those inputs' positions on
    diagonal ``d - 1`` (all contiguous slices)."""

    block: slice
    left: tuple
    top: tuple


@dataclass(frozen=True, eq=False)
class GridLayout:
    """Where every node, edge and line edge of a :class:`GridLineGraph` sits in the kernel's
    layout. Node ``(r, c)`` (corner coordinates) has position ``p`` (diagonal by diagonal);
    grid ``b``'s node there is slot ``p * count + b``; its outputs ``o`` (0 = right, 1 = down)
    and transitions of kind ``i`` (:data:`KINDS`) are ``(p * 2 + o) * count + b`` and
    ``(p * 4 + i) * count + b``. Missing edges point at ``num_edges``, missing line edges at
    ``num_line_edges``, missing readers at ``height * width`` (zero rows appended)."""

    height: int
    width: int
    count: int
    position: Tensor  # [height, width] position of each node (corner coordinates)
    slot: Tensor  # [N] slot of each node
    node: Tensor  # [N] node at each slot
    edges: Tensor  # [2 * N] edge at each output slot
    transitions: Tensor  # [4 * N] line edge at each transition slot
    readers: Tensor  # [P * 2] position of the node reading each output
    diagonals: tuple  # Diagonal per d = 0 .. height + width - 2


def _diagonals(left: list, top: list, height: int, width: int) -> tuple:
    """:class:`Diagonal` runs from ``left[r][c]`` / ``top[r][c]``: does that input continue."""
    first = [max(0, d - width + 1) for d in range(height + width - 1)]
    start = [0]
    for d in range(height + width - 1):
        start.append(start[-1] + min(height - 1, d) - first[d] + 1)

    def runs(d: int, continues: list, row_shift: int) -> tuple:
        """Maximal runs of rows on ``d`` whose input continues, as ``(dst, src)`` slices; the
        input sits on ``d - 1``, ``row_shift`` rows up."""
        rows = [r for r in range(first[d], min(height - 1, d) + 1)
                if 0 <= d - r < width and continues[r][d - r]]
        found = []
        for row in rows:
            if found and found[-1][1] == row - 1:
                found[-1][1] = row
            else:
                found.append([row, row])
        return tuple((slice(start[d] + lo - first[d], start[d] + hi - first[d] + 1),
                      slice(start[d - 1] + lo - row_shift - first[d - 1],
                            start[d - 1] + hi - row_shift - first[d - 1] + 1))
                     for lo, hi in found)

    return tuple(Diagonal(slice(start[d], start[d + 1]), runs(d, left, 0), runs(d, top, 1))
                 for d in range(height + width - 1))


def grid_layout(graph: GridLineGraph) -> GridLayout:
    """The :class:`GridLayout` of ``graph`` (cached on it by :func:`plstm_grid`)."""
    height, width, count = graph.height, graph.width, graph.count
    size, device = height * width, graph.edge_index.device
    # Position of every (r, c) of the corner grid (row-major), diagonal by diagonal.
    r, c = corner_coordinates(height, width, "top-left", device)
    lengths = torch.bincount(r + c, minlength=height + width - 1)
    position = (torch.cumsum(lengths, 0) - lengths)[r + c] + r - (r + c - width + 1).clamp(min=0)
    flat = r * width + c
    readers = torch.stack([torch.where(c + 1 < width, position[(flat + 1) % size], size),
                           torch.where(r + 1 < height, position[(flat + width) % size], size)], 1)
    readers = torch.empty_like(readers).index_copy_(0, position, readers)

    rows, cols = corner_coordinates(height, width, graph.corner, device)  # of every node
    nodes = torch.arange(graph.num_nodes, device=device)
    node_position, grid = position[rows * width + cols][nodes % size], nodes // size
    slot = node_position * count + grid
    node = torch.empty_like(slot).scatter_(0, slot, nodes)

    src, dst = graph.edge_index
    down = (rows[dst % size] > rows[src % size]).long()  # output direction of every edge
    edges = torch.full((2 * graph.num_nodes,), graph.num_edges, dtype=torch.long, device=device)
    edges[(node_position[src] * 2 + down) * count + grid[src]] = torch.arange(graph.num_edges,
                                                                             device=device)
    e_in, e_out = graph.line_index
    kind = 2 * down[e_in] + down[e_out]
    transitions = torch.full((4 * graph.num_nodes,), graph.num_line_edges, dtype=torch.long,
                             device=device)
    transitions[(node_position[src[e_out]] * 4 + kind) * count + grid[src[e_out]]] = torch.arange(
        graph.num_line_edges, device=device)
    present = (transitions < graph.num_line_edges).view(size, 4, count).cpu()
    if not bool((present == present[..., :1]).all()):
        raise ValueError("graph: the grids of a GridLineGraph batch must share one structure")
    present = present[position.cpu(), :, 0].view(height, width, 4)  # corner coordinates
    left, top = present[..., :2].any(-1).tolist(), present[..., 2:].any(-1).tolist()
    return GridLayout(height, width, count, position.view(height, width), slot, node, edges,
                      transitions, readers, _diagonals(left, top, height, width))


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """``x[index]`` with ``index == len(x)`` reading a zero row (a missing edge, line edge or
    reader)."""
    return torch.cat([x, x.new_zeros(1, *x.shape[1:])]).index_select(0, index)


# ---------------------------------------------------------------------------------------------
# The sweeps on the layout: q, k [P, K, B], v [P, V, B] with P = height * width positions and
# B = count * heads columns last; source and mark [P, 2, B] (outputs right, down), transition
# [P, 4, B] (KINDS); states X [P, 2, K, V, B]. Those are the dims the code indexes; in memory the
# columns are innermost when there are at least MIN_INNER_COLUMNS of them: then every product
# broadcasts a gate or a key along whole contiguous rows and every contraction (over K, V or
# both) sums rows into rows, which keeps the vector units busy (reducing the innermost 16
# entries of a [K, V] block was the sweep's bottleneck). With fewer columns those rows are too
# short, and each [K, V] block is stored contiguously instead (docs/grids.md has the timings).
# ---------------------------------------------------------------------------------------------

#: Columns (grids x heads) from which they are stored innermost.
MIN_INNER_COLUMNS = 16


def _columns_inner(columns: int) -> bool:
    return columns >= MIN_INNER_COLUMNS


def _empty(like: Tensor, lead: int, *shape: int) -> Tensor:
    """An empty tensor of ``shape`` (columns last), stored with the columns innermost or, for
    few columns, right after the ``lead`` leading dims (positions, outputs)."""
    if _columns_inner(shape[-1]):
        return like.new_empty(shape)
    return like.new_empty(*shape[:lead], shape[-1], *shape[lead:-1]).movedim(lead, -1)


def _stored(x: Tensor, lead: int) -> Tensor:
    """``x`` copied into the memory order of :func:`_empty`."""
    return _empty(x, lead, *x.shape).copy_(x)


def _by_reader(x: Tensor, layout: GridLayout) -> Tensor:
    """``[P, ...]`` node values at the reader of every output: ``[P, 2, ...]``."""
    return _gather(x, layout.readers.view(-1)).view(-1, 2, *x.shape[1:])


def _to_readers(x: Tensor, layout: GridLayout) -> Tensor:
    """Sum ``[P, 2, ...]`` per-output values into their readers: ``[P, ...]``."""
    positions = x.size(0)
    out = x.new_zeros(positions + 1, *x.shape[2:])
    return out.index_add_(0, layout.readers.view(-1), x.flatten(0, 1))[:positions]


def grid_forward(q, k, v, source, transition, mark, layout: GridLayout):
    """Edge part of the output ``[P, V, B]`` and the states ``X`` ``[P, 2, K, V, B]``."""
    sk = _stored(source[:, :, None] * k[:, None], 2)  # [P, 2, K, B]
    q_mark = _stored(mark[:, :, None] * _by_reader(q, layout), 2)  # what reads each state: M q
    t = transition[:, :, None, None]  # [P, 4, 1, 1, B]
    states = _empty(q, 2, *sk.shape[:3], *v.shape[1:])
    readout = _empty(q, 2, sk.size(0), 2, *v.shape[1:])  # [P, 2, V, B]
    v = v[:, None]
    for diag in layout.diagonals:
        block = diag.block
        torch.mul(sk[block, :, :, None], v[block, :, None], out=states[block])
        for dst, src in diag.left:  # into both outputs from the left input R[r, c - 1]
            states[dst].addcmul_(t[dst, 0:2], states[src, 0:1])
        for dst, src in diag.top:  # from the upper input D[r - 1, c]
            states[dst].addcmul_(t[dst, 2:4], states[src, 1:2])
        torch.sum(q_mark[block, :, :, None] * states[block], 2, out=readout[block])
    return _to_readers(readout, layout), states


def grid_backward(dh, q, k, v, source, transition, mark, states, layout: GridLayout):
    """Gradients of :func:`grid_forward`'s output for the cotangent ``dh``:
    ``(dq, dk, dv, d_source, d_transition, d_mark)``."""
    sk = _stored(source[:, :, None] * k[:, None], 2)
    q_read, dh_read = (_stored(_by_reader(x, layout), 2) for x in (q, dh))
    q_mark = _stored(mark[:, :, None] * q_read, 2)
    t = transition[:, :, None, None]
    d_states = torch.empty_like(states)
    d_transition = torch.zeros_like(transition)
    d_states_v = _empty(q, 2, *sk.shape)  # dC v       [P, 2, K, B]
    states_dh = _empty(q, 2, *sk.shape)  # C dh_reader [P, 2, K, B]
    dv = torch.empty_like(v)
    v = v[:, None, None]  # [P, 1, 1, V, B]
    diagonals = layout.diagonals
    for d in reversed(range(len(diagonals))):
        block = diagonals[d].block
        torch.mul(q_mark[block, :, :, None], dh_read[block, :, None], out=d_states[block])
        if d + 1 < len(diagonals):  # the transitions into the next diagonal, backwards
            after = diagonals[d + 1]
            for (runs, kinds, i) in ((after.left, slice(0, 2), 0), (after.top, slice(2, 4), 1)):
                for dst, src in runs:
                    d_transition[dst, kinds] = (d_states[dst] * states[src, i:i + 1]).sum((2, 3))
                    d_states[src, i].addcmul_(t[dst, kinds.start], d_states[dst, 0])
                    d_states[src, i].addcmul_(t[dst, kinds.start + 1], d_states[dst, 1])
        # This diagonal's state gradients are final: reduce them and its states.
        torch.sum(d_states[block] * v[block], 3, out=d_states_v[block])
        torch.sum(states[block] * dh_read[block, :, None], 3, out=states_dh[block])
        torch.sum(sk[block, :, :, None] * d_states[block], (1, 2), out=dv[block])

    d_source = (d_states_v * k[:, None]).sum(2)
    dk = (source[:, :, None] * d_states_v).sum(1)
    d_mark = (states_dh * q_read).sum(2)
    dq = _to_readers(mark[:, :, None] * states_dh, layout)
    return dq, dk, dv, d_source, d_transition, d_mark


class GridPLSTM(torch.autograd.Function):
    """The edge part of pLSTM on the grid layout, with the explicit backward above.

    With ``recompute=True`` the states are swept again in backward instead of kept.
    """

    @staticmethod
    def forward(ctx, q, k, v, source, transition, mark, layout: GridLayout, recompute: bool):
        out, states = grid_forward(q, k, v, source, transition, mark, layout)
        ctx.layout, ctx.recompute = layout, recompute
        ctx.save_for_backward(q, k, v, source, transition, mark,
                              *(() if recompute else (states,)))
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, dh):
        q, k, v, source, transition, mark, *states = ctx.saved_tensors
        if ctx.recompute:
            states = grid_forward(q, k, v, source, transition, mark, ctx.layout)[1:]
        dh = _stored(dh, 1)
        grads = grid_backward(dh, q, k, v, source, transition, mark, *states, ctx.layout)
        return (*grads, None, None)


def _to_layout(q, k, v, source, transition, mark, layout: GridLayout) -> list:
    """Inputs in the layout; autograd carries the gathers."""
    positions = layout.height * layout.width
    columns_inner = _columns_inner(layout.count * q.size(1))
    nodes = [x.index_select(0, layout.node).view(positions, -1, x.size(-1)).transpose(1, 2)
             for x in (q, k, v)]
    return ([x.contiguous() if columns_inner else x for x in nodes]
            + [_gather(source, layout.edges).view(positions, 2, -1),
               _gather(transition, layout.transitions).view(positions, 4, -1),
               _gather(mark, layout.edges).view(positions, 2, -1)])


def _from_layout(out: Tensor, layout: GridLayout, heads: int) -> Tensor:
    """``[P, V, B]`` back to ``[N, H, V]`` in node order."""
    return out.transpose(1, 2).reshape(-1, heads, out.size(1)).index_select(0, layout.slot)


def plstm_grid(q, k, v, source, transition, mark, direct, graph: GridLineGraph,
               recompute: bool = False) -> Tensor:
    """pLSTM on a :class:`GridLineGraph` by the diagonal wavefront (the ``"grid"`` backend)."""
    if not isinstance(graph, GridLineGraph):
        raise ValueError(f"graph must be a GridLineGraph for the grid backend, got "
                         f"{type(graph).__name__}")
    layout = graph.cached("grid_layout", grid_layout)
    out = GridPLSTM.apply(*_to_layout(q, k, v, source, transition, mark, layout), layout,
                          recompute)
    return _from_layout(out, layout, q.size(1)) + direct_term(q, k, v, direct)


def plstm_grid_reference(q, k, v, source, transition, mark, direct, graph: GridLineGraph,
                         recompute: bool = False) -> Tensor:
    """The 2D recurrence of the module docstring, node by node in row-major corner order."""
    layout, heads, direct_part = grid_layout(graph), q.size(1), direct_term(q, k, v, direct)
    q, k, v, s, t, m = _to_layout(q, k, v, source, transition, mark, layout)
    s, t, m = s[:, :, None, None], t[:, :, None, None], m[:, :, None, None]  # [P, o, 1, 1, B]
    at = layout.position.tolist()
    right, down, out = {}, {}, {}
    for r in range(layout.height):
        for c in range(layout.width):
            p = at[r][c]
            kv = k[p, :, None] * v[p, None]  # [K, V, B]
            left = right[r, c - 1] if c > 0 else torch.zeros_like(kv)
            up = down[r - 1, c] if r > 0 else torch.zeros_like(kv)
            left_mark = m[at[r][c - 1], 0] if c > 0 else 0
            up_mark = m[at[r - 1][c], 1] if r > 0 else 0
            out[p] = torch.einsum("kb,kvb->vb", q[p], left_mark * left + up_mark * up)
            right[r, c] = s[p, 0] * kv + t[p, 0] * left + t[p, 2] * up  # T_rr, T_dr
            down[r, c] = s[p, 1] * kv + t[p, 1] * left + t[p, 3] * up  # T_rd, T_dd
    out = torch.stack([out[p] for p in range(len(out))])
    return _from_layout(out, layout, heads) + direct_part


register_backend("grid", plstm_grid, auto_for=lambda graph: isinstance(graph, GridLineGraph))

from .grid_chunk import plstm_grid_chunk  # noqa: E402  (it builds on this module's layout)

register_backend("grid-chunk", plstm_grid_chunk)
