"""Softmax attention over the nodes of each graph, as cascades of einsums (FuseMax).

``naive`` is the 3-pass reference, ``two_pass`` and ``one_pass`` chunk the keys
(:mod:`.tiles` holds their layout); :func:`einsum_attention` checks its arguments and
dispatches on ``passes``.
"""
from .dispatch import einsum_attention
from .naive import naive_attention
from .one_pass import OnePassAttention, one_pass_attention
from .two_pass import two_pass_attention

__all__ = [
    "einsum_attention",
    "naive_attention",
    "two_pass_attention",
    "one_pass_attention",
    "OnePassAttention",
]
