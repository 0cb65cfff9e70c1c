"""2-pass attention over key chunks (FuseMax, Nayak et al., MICRO 2024).

Keys are split into chunks (M = M1 x M0, see :mod:`.tiles`). Per chunk m1:

    pass 1:  BQK = einsum(Q, K[m1])            local scores
             LM  = max_m0 BQK                  local max
             RM' = max(RM, LM)                 running max
             PRM = exp(RM - RM')               rescales what was summed under the old max
             RD  = RD * PRM + sum_m0 exp(BQK - RM')      running denominator
    pass 2:  BQK = einsum(Q, K[m1])            (recomputed)
             A   = exp(BQK - RM) / RD          normalised weights, final RM and RD
             AV += einsum(A, V[m1])

Pass 2 needs the final max and denominator, so the scores are computed twice and the
output is never rescaled. Autograd provides the backward, which keeps every chunk's weights:
training memory is quadratic, as for the 3-pass cascade (see :mod:`.one_pass` for the
O(nodes x chunk) one).
"""
from typing import Optional

import torch
from torch import Tensor

from .tiles import LOG2E, Tiles


def two_pass_attention(q: Tensor, k: Tensor, v: Tensor, batch: Optional[Tensor] = None,
                       chunk_size: int = 64, causal: bool = False,
                       scale: Optional[float] = None, tiles: Optional[Tiles] = None) -> Tensor:
    r"""Softmax attention inside each graph, by the 2-pass cascade.

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
    return tiles.unpack(two_pass_tiles(tiles.pack(q) * scale, tiles.pack(k), tiles.pack(v), tiles))


def _finite(x: Tensor) -> Tensor:
    # Rows that have met no key keep max -inf; shifting by 0 instead avoids inf - inf.
    return x.masked_fill(x == float("-inf"), 0.0)


def _put(x: Tensor, rows: slice, value: Tensor) -> Tensor:
    r"""``x`` with the tiles ``rows`` replaced by ``value``, out of place (for autograd)."""
    return torch.cat([x[:, :rows.start], value, x[:, rows.stop:]], 1)


def two_pass_tiles(q: Tensor, k: Tensor, v: Tensor, tiles: Tiles) -> Tensor:
    r"""The cascade on tiles: q (already scaled), k [H, T, C, K], v [H, T, C, V]
    -> [H, T, C, V]. Scores in base 2, as in :mod:`.one_pass`; masked ones are -inf, which
    exp2 makes exactly 0. Written with out-of-place updates so that autograd can follow it."""
    H, T, C, _ = q.shape
    if tiles.num_steps == 0:  # no node: an empty output, still part of the autograd graph
        return v * 0
    q = q * LOG2E
    RM = q.new_full((H, T, C), float("-inf"))
    RD = q.new_zeros((H, T, C))
    for s, step in enumerate(tiles.steps):  # pass 1
        rows = step.rows
        BQK = tiles.scores(q, k, s)
        # The max is only a shift that cancels in A = exp(BQK - RM) / RD: no gradient.
        RM_new = torch.maximum(RM[:, rows], BQK.detach().amax(-1))
        shift = _finite(RM_new)
        PRM = torch.exp2(RM[:, rows] - shift)
        SLD = torch.exp2(BQK - shift[..., None]).sum(-1)
        RM, RD = _put(RM, rows, RM_new), _put(RD, rows, RD[:, rows] * PRM + SLD)

    RM, RD = _finite(RM), RD.masked_fill(RD == 0, 1.0)
    AV = q.new_zeros(H, T, C, v.size(-1))
    for s, step in enumerate(tiles.steps):  # pass 2
        rows = step.rows
        weights = torch.exp2(tiles.scores(q, k, s) - RM[:, rows, :, None]) \
            / RD[:, rows, :, None]
        AV = _put(AV, rows, AV[:, rows] + tiles.pv(weights, v, step))
    return AV
