"""``einsum_attention``: argument checks, then the cascade asked for."""
from typing import Optional

import torch
from torch import Tensor

from .naive import naive_attention
from .one_pass import one_pass_attention
from .tiles import Tiles
from .two_pass import two_pass_attention


def einsum_attention(q: Tensor, k: Tensor, v: Tensor, batch: Optional[Tensor] = None,
                     passes: int = 1, chunk_size: int = 64, causal: bool = False,
                     scale: Optional[float] = None, tiles: Optional[Tiles] = None) -> Tensor:
    r"""Softmax attention among the nodes of each graph of a PyG batch, written as a
    cascade of einsums (FuseMax, Nayak et al., MICRO 2024):

    .. math::
        \mathbf{o}_n = \sum_{n' \in \mathcal{G}(n)} \operatorname{softmax}_{n'}
        \left( s \, \mathbf{q}_n^\top \mathbf{k}_{n'} \right) \mathbf{v}_{n'}

    per head, where :math:`\mathcal{G}(n)` holds the nodes of n's graph (only those
    n' <= n when ``causal``) and :math:`s` = ``scale``, by default :math:`K^{-1/2}` as in
    :func:`torch.nn.functional.scaled_dot_product_attention`, so that the two compare
    directly. A row with nothing to attend to gives 0, not NaN. Half-precision inputs
    (float16, bfloat16) are computed in float32, also under :func:`torch.autocast`, and the
    output has the inputs' dtype.

    ``passes`` picks the cascade; all three compute the same function:

    * 3: :func:`~.naive.naive_attention`, the full score matrix of every graph (padded to
      the largest); ``chunk_size`` is unused.
    * 2: :func:`~.two_pass.two_pass_attention`, max and denominator over key chunks, then
      the weighted values; autograd backward.
    * 1: :func:`~.one_pass.one_pass_attention`, running max, denominator and numerator
      over key chunks; forward and backward memory O(nodes x ``chunk_size``).

    Args:
        q (torch.Tensor): queries.
        k (torch.Tensor): keys.
        v (torch.Tensor): values.
        batch (torch.Tensor, optional): graph index of each node, sorted as PyG gives it;
            a missing index is an empty graph. ``None``: all nodes form one graph.
        passes (int): 1, 2 or 3.
        chunk_size (int): keys per chunk of the 1- and 2-pass cascades.
        causal (bool): node n attends only to the nodes n' <= n of its graph (node order).
        scale (float, optional): score scale; default ``K ** -0.5``.
        tiles (Tiles, optional): the 1- and 2-pass cascades' layout of ``batch``,
            ``Tiles.from_batch(batch, N, chunk_size, causal)``, for callers that run several
            attention layers on one batch and build it once (built here otherwise; unused
            by ``passes=3``).

    Shapes:
        - **input:** q :math:`(N, H, K)`, k :math:`(N, H, K)`, v :math:`(N, H, V)`,
          batch :math:`(N)`
        - **output:** :math:`(N, H, V)`
    """
    _check(q, k, v, batch, passes, chunk_size, causal, scale, tiles)
    # Half inputs are computed in float32 (CPUs lack half matmuls, and sums of many weights
    # would round), with autocast off so that it does not cast the products back down.
    dtype = q.dtype
    q, k, v = (x.to(torch.promote_types(dtype, torch.float32)) for x in (q, k, v))
    with torch.autocast(q.device.type, enabled=False):
        if passes == 3:
            out = naive_attention(q, k, v, batch, causal=causal, scale=scale)
        else:
            cascade = one_pass_attention if passes == 1 else two_pass_attention
            out = cascade(q, k, v, batch, chunk_size=chunk_size, causal=causal, scale=scale,
                          tiles=tiles)
    return out.to(dtype)


def _check(q, k, v, batch, passes, chunk_size, causal, scale, tiles) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, Tensor):
            raise ValueError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 3:
            raise ValueError(f"`{name}` must have shape [N, H, D], got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"`{name}` must be floating point, got {x.dtype}")
    if k.shape != q.shape:
        raise ValueError(f"`k` must have the shape of `q` {tuple(q.shape)}, got {tuple(k.shape)}")
    if v.shape[:2] != q.shape[:2]:
        raise ValueError(f"`v` must have shape [N, H, V] = [{q.size(0)}, {q.size(1)}, V], "
                         f"got {tuple(v.shape)}")
    for name, x in (("k", k), ("v", v)):
        if x.dtype != q.dtype or x.device != q.device:
            raise ValueError(f"`{name}` must have the dtype and device of `q` "
                             f"({q.dtype}, {q.device}), got ({x.dtype}, {x.device})")
    if batch is not None:
        if not isinstance(batch, Tensor) or batch.dtype != torch.long or batch.dim() != 1:
            raise ValueError("`batch` must be a 1-D torch.long tensor")
        if batch.numel() != q.size(0):
            raise ValueError(f"`batch` must have one entry per node ({q.size(0)}), "
                             f"got {batch.numel()}")
        if batch.device != q.device:
            raise ValueError(f"`batch` must be on the device of `q` ({q.device}), "
                             f"got {batch.device}")
        if batch.numel() and (int(batch[0]) < 0 or bool((batch[1:] < batch[:-1]).any())):
            raise ValueError("`batch` must be sorted and non-negative, as PyG batches are")
    if isinstance(passes, bool) or passes not in (1, 2, 3):
        raise ValueError(f"`passes` must be 1, 2 or 3, got {passes!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"`chunk_size` must be a positive int, got {chunk_size!r}")
    if not isinstance(causal, bool):
        raise ValueError(f"`causal` must be a bool, got {causal!r}")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
        raise ValueError(f"`scale` must be a float or None, got {scale!r}")
    if tiles is not None:
        if not isinstance(tiles, Tiles):
            raise ValueError(f"`tiles` must be a Tiles layout or None, got {type(tiles).__name__}")
        if (tiles.slot.numel() != q.size(0) or tiles.causal != causal
                or tiles.chunk_size > chunk_size):
            raise ValueError(
                f"`tiles` must be the layout of this call, Tiles.from_batch(batch, {q.size(0)}, "
                f"{chunk_size}, {causal}); got one of {tiles.slot.numel()} nodes, tile size "
                f"{tiles.chunk_size}, causal={tiles.causal}")
