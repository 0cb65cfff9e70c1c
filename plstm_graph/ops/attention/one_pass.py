"""1-pass attention over key chunks (FuseMax, Nayak et al., MICRO 2024), with a
FlashAttention-2 style backward.

Keys are split into chunks (M = M1 x M0, see :mod:`.tiles`). One pass over the chunks:

    BQK  = einsum(Q, K[m1])           local scores
    LM   = max_m0 BQK                 local max
    RM'  = max(RM, LM)                running max
    PRM  = exp(RM - RM')              rescale factor for what was accumulated so far
    SLN  = exp(BQK - RM')             local numerators
    SLD  = sum_m0 SLN                 local denominator
    RD   = RD * PRM + SLD             running denominator
    RNV  = RNV * PRM + einsum(SLN, V[m1])      running numerator (times V)
    AV   = RNV / RD                   one division at the end

The stages between the two einsums of a step (LM ... RD) run per row of the scores
(:func:`.rows.online_softmax_`, compiled on CPU: each row read and written once). Scores are in
base 2 (Q scaled by log2 e, every exp an exp2; see :data:`.tiles.LOG2E`): the same function,
computed faster on CPU.

At most two chunks of scores are alive at a time (the first step's, kept for the backward,
and the current one): the forward takes O(nodes x chunk) extra memory. The backward saves
q, k, v, the output O and the log-sum-exp LSE = RM + log RD, and recomputes each chunk's
weights P = exp(BQK - LSE) (Dao, FlashAttention-2, 2023):

    dV[m1] += P^T dO        dP = dO V[m1]^T        dS = P * (dP - rowsum(dO * O))
    dQ     += dS K[m1]      dK[m1] += dS^T Q

so training memory is O(nodes x chunk) as well. The first step's weights P0 = exp(BQK0 -
LSE) take no more memory than the forward's scores: the forward keeps them and the backward
recomputes only the later steps. The first step is the diagonal one of the packed tiles
(every graph that fits a tile) or the largest graph's first: a batch of molecules is one
step, and nothing is recomputed.
"""
from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .rows import delta_times_, exp2_shifted_, online_softmax_
from .tiles import LOG2E, Tiles


def one_pass_attention(q: Tensor, k: Tensor, v: Tensor, batch: Optional[Tensor] = None,
                       chunk_size: int = 64, causal: bool = False,
                       scale: Optional[float] = None, tiles: Optional[Tiles] = None) -> Tensor:
    r"""Softmax attention inside each graph, by the 1-pass cascade.

    Args:
        q, k: [N, H, K] queries and keys in PyG node order.
        v: [N, H, V] values.
        batch: [N] sorted graph index of each node (``None``: one graph).
        chunk_size: keys per chunk (M0).
        causal: node n attends only to nodes n' <= n of its graph.
        scale: score scale, default ``K ** -0.5`` as in ``scaled_dot_product_attention``.
        tiles: the layout of ``batch`` (:meth:`Tiles.from_batch`), when the caller shares one
            between layers; built here otherwise.

    Returns:
        [N, H, V]; a row with no key to attend to is 0.
    """
    scale = q.size(-1) ** -0.5 if scale is None else scale
    if tiles is None:
        tiles = Tiles.from_batch(batch, q.size(0), chunk_size, causal)
    return OnePassAttention.apply(q, k, v, tiles, scale)


def one_pass_forward(q: Tensor, k: Tensor, v: Tensor, tiles: Tiles, scale: float):
    r"""q, k [H, T, C, K], v [H, T, C, V] -> output [H, T, C, V], LSE [H, T, C] in base 2
    (``+inf`` on rows without keys, so that their recomputed weights are 0) and the first
    step's normalised weights P0 [H, A, C, C] (``None`` without nodes)."""
    H, T, C, _ = q.shape
    q = q * (scale * LOG2E)
    # Every tile's first step writes its rows (Step.first): no initial -inf and zeros.
    RM, RD = q.new_empty((H, T, C)), q.new_empty((H, T, C))
    RNV = q.new_empty((H, T, C, v.size(-1)))
    for s, step in enumerate(tiles.steps):
        rows = step.rows
        # BQK becomes SLN in place; masked scores are -inf, and exp2 makes them exactly 0.
        SLN = tiles.scores(q, k, s)
        PRM = online_softmax_(SLN, RM[:, rows], RD[:, rows], step.first)
        if step.first:
            RNV[:, rows] = tiles.pv(SLN, v, step)
        else:
            RNV[:, rows].mul_(PRM[..., None])
            tiles.pv_add_(RNV, SLN, v, step)
        if s == 0:
            # The shift of the first step's numerators: its max, 0 on rows without keys.
            SLN0, shift0 = SLN, RM[:, rows].masked_fill(RM[:, rows] == float("-inf"), 0.0)
    empty = RD == 0
    LSE = (RM + torch.log2(RD)).masked_fill_(empty, float("inf"))
    out = RNV / RD.masked_fill(empty, 1.0)[..., None]
    if tiles.num_steps == 0:
        return out, LSE, None
    # P0 = SLN0 exp(shift0 - LSE); shift0 <= LSE on rows that met a key at the first step,
    # and the other rows of SLN0 are 0: the clamp only keeps their factor finite.
    rows = tiles.steps[0].rows
    P0 = SLN0.mul_(torch.exp2((shift0 - LSE[:, rows]).clamp_max_(0.0))[..., None])
    return out, LSE, P0


def one_pass_backward(dO: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, LSE: Tensor,
                      P0: Optional[Tensor], tiles: Tiles, scale: float):
    r"""Gradients of :func:`one_pass_forward` for q, k and v, chunk by chunk, from the first
    step's weights ``P0`` and the other steps' weights recomputed."""
    q = q * scale
    D = (dO * out).sum(-1)  # rowsum(dO * O) = sum_m P dP
    # Each query tile's first step writes its rows of dq, and the diagonal step the packed
    # tiles' rows of dk and dv; the multi-tile graphs' keys sum over steps.
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    dk[:, :tiles.num_large], dv[:, :tiles.num_large] = 0.0, 0.0
    for s, step in enumerate(tiles.steps):
        rows = step.rows
        if s == 0:
            P = P0
        else:  # recomputed; -inf scores (masked) and +inf LSE (no key) give 0
            if s == 1:
                q2 = q * LOG2E
            P = exp2_shifted_(tiles.scores(q2, k, s), LSE[:, rows])
        tiles.ptx_add_(dv, P, dO, step)
        dS = delta_times_(tiles.qk(dO, v, step), P, D[:, rows])  # P0 stays intact
        if step.first:
            dq[:, rows] = tiles.pv(dS, k, step)
        else:
            tiles.pv_add_(dq, dS, k, step)
        tiles.ptx_add_(dk, dS, q, step)
    return dq.mul_(scale), dk, dv


class OnePassAttention(torch.autograd.Function):
    r"""The 1-pass cascade with a FlashAttention-2 backward (first derivatives only): q, k
    [N, H, K] and v [N, H, V] in node order -> [N, H, V]; the tile layout stays inside."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, tiles: Tiles, scale: float) -> Tensor:
        q, k, v = tiles.pack(q), tiles.pack(k), tiles.pack(v)
        out, LSE, P0 = one_pass_forward(q, k, v, tiles, scale)
        ctx.save_for_backward(q, k, v, out, LSE, P0)
        ctx.tiles, ctx.scale = tiles, scale
        return tiles.unpack(out)

    @staticmethod
    @once_differentiable
    def backward(ctx, dO: Tensor):
        q, k, v, out, LSE, P0 = ctx.saved_tensors
        tiles = ctx.tiles
        grads = one_pass_backward(tiles.pack(dO), q, k, v, out, LSE, P0, tiles, ctx.scale)
        return (*(tiles.unpack(g) for g in grads), None, None)
