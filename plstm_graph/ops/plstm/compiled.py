"""pLSTM as a compiled per-edge sweep on CPU (``csrc/plstm_sweep.c``), with its adjoint sweep.

The recurrence of :func:`~.naive.plstm_reference` and its direct term, graph after graph (the
weakly connected components of a batch), each graph edge after edge in level order, written as
C loops and built on first use by :mod:`plstm_graph.ops.c_build`, once per scalar type. It
does ``E * H * K * V`` multiply-adds per pass and no per-level or per-block operator calls,
which is what the Python backends spend their time on for batches of small graphs. Without a
compiler (or with ``PLSTM_GRAPH_NO_COMPILE=1``) the backend is unavailable: ``auto`` keeps the
Python backends and asking for ``"compiled"`` by name raises an error that says why.

Only the inputs are kept between forward and backward: the backward sweeps each graph's cell
states again into a scratch of that graph's size, then runs the adjoint sweep over it, so no
``[E, H, K, V]`` tensor exists (``recompute`` changes nothing). Following the recurrence's data
flow, its output is NaN or inf where the reference's is (its gradients are non-finite at the
same entries, though NaN and inf may trade places, as with ``levels``). It runs single-threaded.
"""
import ctypes
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .. import c_build
from ..c_build import INT, PTR, SCALARS, pointers
from ...graph.line_graph import LineGraph
from .blocks import components_of
from .dispatch import check_inputs, check_same_dtype, register_backend

SOURCE = Path(__file__).with_name("csrc") / "plstm_sweep.c"


@dataclass(frozen=True, eq=False)
class SweepPlan:
    """Edges ordered graph after graph (weakly connected components), each graph in level
    order (*positions*), and the line edges grouped by the position they end at (forward) and
    start at (backward), as the CSR arrays the C sweep reads."""

    comp_ptr: Tensor  # [C + 1] positions of each component with edges
    edge: Tensor  # [E] edge id at each position
    src: Tensor  # [E] source node at each position
    dst: Tensor  # [E] target node at each position
    in_ptr: Tensor  # [E + 1]
    in_pos: Tensor  # [L] position of the line edge's start, grouped by its end
    in_line: Tensor  # [L] its line id
    out_ptr: Tensor  # [E + 1]
    out_pos: Tensor  # [L] position of the line edge's end, grouped by its start
    out_line: Tensor  # [L]
    num_comps: int  # C
    largest: int  # edges of the largest component: the sweep's scratch holds that many cells


def _csr(group: np.ndarray, other: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    lines = np.argsort(group, kind="stable")
    ptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.bincount(group, minlength=size), out=ptr[1:])
    return ptr, other[lines], lines


def make_sweep_plan(graph: LineGraph) -> SweepPlan:
    # Graph after graph: the sweep keeps one graph's cells in cache, and the backward sweeps
    # each graph's cells again instead of keeping all of them. Built in numpy: a plan is made
    # once per batch, where torch's per-operator overhead would be most of its cost.
    edge_index, line_index, level = (x.cpu().long().numpy() for x in
                                     (graph.edge_index, graph.line_index, graph.edge_level))
    comp = components_of(graph)[edge_index[0]]
    edge = np.lexsort((level, comp))
    counts = np.bincount(comp)
    counts = counts[counts > 0]
    comp_ptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=comp_ptr[1:])
    position = np.empty_like(edge)
    position[edge] = np.arange(len(edge))
    e_in, e_out = position[line_index]
    # The C sweep indexes a graph's scratch by position: a line edge must run forward within
    # one graph (prepare_dag's line graphs do; a hand-built LineGraph might not).
    same_graph = comp[line_index[0]] == comp[line_index[1]]
    if not ((e_in < e_out).all() and same_graph.all()):
        raise ValueError("graph has a line edge that joins two weakly connected components or "
                         "does not go from a lower to a higher edge level; build it with "
                         "prepare_dag")
    src, dst = edge_index[:, edge]
    arrays = (comp_ptr, edge, src, dst, *_csr(e_out, e_in, len(edge)), *_csr(e_in, e_out, len(edge)))
    return SweepPlan(*(torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)) for a in arrays),
                     num_comps=len(counts), largest=int(counts.max(initial=0)))


def sweep_plan_of(graph: LineGraph) -> SweepPlan:
    """The :class:`SweepPlan` of ``graph``, computed once per graph."""
    return graph.cached("sweep_plan", make_sweep_plan)


def build(scalar: str) -> Path:
    """The shared library of the sweep for ``scalar`` (``"float"`` or ``"double"``), compiled
    unless the cache holds it. Raises ``RuntimeError`` when it cannot be built."""
    return c_build.build(SOURCE, scalar)


_SIGNATURES = {"plstm_sweep_forward": [INT] * 5 + [PTR] * 17,
               "plstm_sweep_backward": [INT] * 5 + [PTR] * 29}


@functools.cache  # a loaded library, like an imported module: once per process
def library(scalar: str) -> ctypes.CDLL:
    return c_build.load(SOURCE, scalar, _SIGNATURES)


@functools.cache
def unavailable() -> str | None:
    """Why the compiled sweep cannot run here, or ``None`` when it can (both scalar types
    built and loaded)."""
    return c_build.load_error(library)


def available() -> bool:
    return unavailable() is None


def sweep_forward(q, k, v, source, transition, mark, direct, plan: SweepPlan) -> Tensor:
    """The output ``[N, H, V]``: ``h_n = sum_{e: dst e = n} M_e C_e^T q_n + D_n (q_n . k_n) v_n``."""
    (num_nodes, heads, key_dim), value_dim = q.shape, v.size(-1)
    # Scratch for one graph's cells and one readout, held here: the C code gets bare pointers.
    cells = q.new_empty(plan.largest, heads, key_dim, value_dim)
    read = q.new_empty(value_dim)
    out = q.new_empty(num_nodes, heads, value_dim)
    library(SCALARS[q.dtype]).plstm_sweep_forward(
        num_nodes, plan.num_comps, heads, key_dim, value_dim,
        *pointers(plan.comp_ptr, plan.edge, plan.src, plan.dst, plan.in_ptr, plan.in_pos,
                   plan.in_line, q, k, v, source, transition, mark, direct, cells, read, out))
    return out


def sweep_backward(grad_out, q, k, v, source, transition, mark, direct,
                   plan: SweepPlan) -> tuple[Tensor, ...]:
    """Gradients w.r.t. ``q, k, v, source, transition, mark, direct`` (each graph's cell states
    are swept again, then its adjoint sweep runs)."""
    (num_nodes, heads, key_dim), value_dim = q.shape, v.size(-1)
    grads = [torch.empty_like(x) for x in (q, k, v, source, transition, mark, direct)]
    # Scratch for one graph's cells and adjoints and two products of a cell with a vector, held
    # here: the C code gets bare pointers.
    cells, d_cells = (q.new_empty(plan.largest, heads, key_dim, value_dim) for _ in range(2))
    row_sums = q.new_empty(2, key_dim)
    library(SCALARS[q.dtype]).plstm_sweep_backward(
        num_nodes, plan.num_comps, heads, key_dim, value_dim,
        *pointers(plan.comp_ptr, plan.edge, plan.src, plan.dst, plan.in_ptr, plan.in_pos,
                   plan.in_line, plan.out_ptr, plan.out_pos, plan.out_line, q, k, v, source,
                   transition, mark, direct, grad_out, cells, d_cells, *row_sums, *grads))
    return tuple(grads)


class CompiledPLSTM(torch.autograd.Function):
    """pLSTM by the compiled sweep. Only the inputs are kept between the passes (the backward
    sweeps each graph's cells again)."""

    @staticmethod
    def forward(ctx, q, k, v, source, transition, mark, direct, plan: SweepPlan):
        ctx.plan = plan
        ctx.save_for_backward(q, k, v, source, transition, mark, direct)
        return sweep_forward(q, k, v, source, transition, mark, direct, plan)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        return *sweep_backward(grad_out.contiguous(), *ctx.saved_tensors, ctx.plan), None


def plstm_compiled(q, k, v, source, transition, mark, direct, graph: LineGraph,
                   recompute: bool = False) -> Tensor:
    """pLSTM by the compiled per-edge sweep (CPU tensors of float32 or float64)."""
    reason = unavailable()
    if reason is not None:
        raise RuntimeError(f"backend 'compiled' is not available here: {reason}")
    # pg.plstm checks these too, but C reads whatever memory it is given: direct calls as well.
    inputs = (q, k, v, source, transition, mark, direct)
    check_inputs(inputs, graph)
    check_same_dtype(inputs)
    if q.device.type != "cpu":
        raise ValueError(f"backend 'compiled' runs on CPU tensors, got q on {q.device}")
    if q.dtype not in SCALARS:
        raise ValueError(f"backend 'compiled' takes float32 or float64, got {q.dtype}")
    inputs = [x.contiguous() for x in inputs]
    return CompiledPLSTM.apply(*inputs, sweep_plan_of(graph))


def accepts(graph: LineGraph) -> bool:
    """``auto`` takes the compiled sweep for every CPU graph, when it can be built."""
    return graph.edge_index.device.type == "cpu" and available()


register_backend("compiled", plstm_compiled, auto_for=accepts)

__all__ = ["CompiledPLSTM", "SweepPlan", "available", "build", "plstm_compiled",
           "sweep_backward", "sweep_forward", "sweep_plan_of", "unavailable"]
