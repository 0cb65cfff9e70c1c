"""The element-wise stages of a cascade step, on the rows of its scores.

Between the two products of a step (scores, then weights times values) the cascades work on
each row of the scores: the running max and denominator of the forward, the recomputed weights
and ``dS`` of the backward. Each function here is written twice: a PyTorch reference (one
operator per stage, so a pass over the scores per stage), and a compiled one
(``csrc/softmax_rows.c``, built by :mod:`plstm_graph.ops.c_build`) that reads and writes each
row once. The compiled one runs for contiguous float32 / float64 CPU scores when it can be
built (``PLSTM_GRAPH_NO_COMPILE=1`` keeps the references), single-threaded: on scores that
torch would share between several threads the references run; tests compare the two.

Shapes: scores ``S`` [H, A, C, L] (heads, query tiles, tile rows, keys), contiguous; per-row
vectors ``[H, A, C]``, views of the cascade's ``[H, T, C]`` state (a slice of query tiles).
Exponentials are base 2 (:data:`.tiles.LOG2E`).
"""
import contextlib
import functools
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from .. import c_build
from ..c_build import INT, PTR, SCALARS, pointers

SOURCE = Path(__file__).with_name("csrc") / "softmax_rows.c"
_SIGNATURES = {"online_softmax": [INT] * 5 + [PTR] * 4,
               "exp2_shifted": [INT] * 4 + [PTR] * 2,
               "delta_times": [INT] * 4 + [PTR] * 3}


def online_softmax_reference(S: Tensor, m: Tensor, d: Tensor, first: bool) -> Optional[Tensor]:
    r"""One step of the running softmax, in place: ``m`` [H, A, C] becomes ``max(m, max_j
    S)``, ``S`` the numerators ``2^(S - c)`` with ``c`` the new max (0 on rows that have met
    no key yet, all -inf), and ``d`` the denominator, rescaled by ``prm = 2^(m_old - c)``
    plus the new row sums. On a ``first`` step ``m`` and ``d`` are written, not read, and
    ``None`` is returned; otherwise ``prm`` [H, A, C], to rescale the running numerator."""
    top = S.amax(-1) if first else torch.maximum(m, S.amax(-1))
    c = top.masked_fill(top == float("-inf"), 0.0)
    S.sub_(c[..., None]).exp2_()
    prm = None if first else torch.exp2(m - c)
    d.copy_(S.sum(-1) if first else d * prm + S.sum(-1))
    m.copy_(top)
    return prm


def exp2_shifted_reference(S: Tensor, shift: Tensor) -> Tensor:
    r"""``S = 2^(S - shift)`` in place, ``shift`` [H, A, C] per row."""
    return S.sub_(shift[..., None]).exp2_()


def delta_times_reference(dP: Tensor, P: Tensor, delta: Tensor) -> Tensor:
    r"""``dP = P * (dP - delta)`` in place, ``delta`` [H, A, C] per row."""
    return dP.sub_(delta[..., None]).mul_(P)


@functools.cache  # a loaded library, like an imported module: once per process
def library(scalar: str):
    return c_build.load(SOURCE, scalar, _SIGNATURES)


@functools.cache
def unavailable() -> Optional[str]:
    """Why the compiled row stages cannot run here, or ``None`` when they can."""
    return c_build.load_error(library)


#: Inside :func:`references`: the compiled stages stand aside.
_references_only = False


@contextlib.contextmanager
def references():
    r"""Inside, every stage runs its PyTorch reference (forward and backward calls made
    within), so that the compiled ones can be measured or checked against them."""
    global _references_only
    outer, _references_only = _references_only, True
    try:
        yield
    finally:
        _references_only = outer


#: ATen splits an element-wise operator over threads from this many elements on (its
#: ``GRAIN_SIZE``); the compiled stages run on one thread, so larger scores keep the references
#: when torch has several threads.
PARALLEL_FROM = 32768


def _compiled(S: Tensor, *rows: Tensor) -> bool:
    r"""Whether the compiled stages take these scores and per-row vectors: CPU, float32 or
    float64, scores contiguous with at least one key, each row vector contiguous within a head
    and its heads apart (no entry written twice), and the work not one that torch's threads
    would share."""
    H, A, C, L = S.shape
    return (S.device.type == "cpu" and S.dtype in SCALARS and S.is_contiguous() and L > 0
            and (S.numel() < PARALLEL_FROM or torch.get_num_threads() == 1)
            and all(r.dtype == S.dtype and r.device == S.device and r.shape == S.shape[:-1]
                    and r.stride()[1:] == (C, 1) and (H == 1 or r.stride(0) >= A * C)
                    for r in rows)
            and not _references_only and unavailable() is None)


def _written(*tensors: Tensor) -> None:
    r"""Tell autograd that C wrote these tensors in place, as the references' in-place
    operators do (a saved tensor written afterwards then fails the backward, as it should)."""
    torch.autograd.graph.increment_version(tensors)


def _sizes(S: Tensor, row: Tensor) -> list:
    H, A, C, L = S.shape
    return [H, A * C, L, row.stride(0)]


def online_softmax_(S: Tensor, m: Tensor, d: Tensor, first: bool) -> Optional[Tensor]:
    r""":func:`online_softmax_reference`, compiled where it can run."""
    if not _compiled(S, m, d):
        return online_softmax_reference(S, m, d, first)
    prm = None if first else S.new_empty(S.shape[:-1])
    library(SCALARS[S.dtype]).online_softmax(
        *_sizes(S, m), int(first), *pointers(S, m, d), None if first else prm.data_ptr())
    _written(S, m, d)
    return prm


def exp2_shifted_(S: Tensor, shift: Tensor) -> Tensor:
    r""":func:`exp2_shifted_reference`, compiled where it can run."""
    if not _compiled(S, shift):
        return exp2_shifted_reference(S, shift)
    library(SCALARS[S.dtype]).exp2_shifted(*_sizes(S, shift), *pointers(S, shift))
    _written(S)
    return S


def delta_times_(dP: Tensor, P: Tensor, delta: Tensor) -> Tensor:
    r""":func:`delta_times_reference`, compiled where it can run."""
    if not (_compiled(dP, delta) and P.shape == dP.shape and P.dtype == dP.dtype
            and P.is_contiguous() and P.data_ptr() != dP.data_ptr()):
        return delta_times_reference(dP, P, delta)
    library(SCALARS[dP.dtype]).delta_times(*_sizes(dP, delta), *pointers(dP, P, delta))
    _written(dP)
    return dP


__all__ = ["delta_times_", "delta_times_reference", "exp2_shifted_", "exp2_shifted_reference",
           "online_softmax_", "online_softmax_reference", "references", "unavailable"]
