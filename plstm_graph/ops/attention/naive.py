"""3-pass attention: the readable reference cascade (FuseMax, Nayak et al., MICRO 2024).

Three passes over each query's keys, every intermediate a full ``[B, H, Nmax, Nmax]``
tensor (graphs padded to the largest one; autograd provides the backward):

    QK = einsum(Q, K)            scores
    GM = max_m QK                pass 1: global max
    SN = exp(QK - GM)            pass 2: numerators ...
    SD = sum_m SN                        ... and their denominator
    A  = SN / SD                 pass 3: normalised weights ...
    AV = einsum(A, V)                    ... applied to the values
"""
from typing import Optional

import torch
from torch import Tensor
from torch_geometric.utils import to_dense_batch


def naive_attention(q: Tensor, k: Tensor, v: Tensor, batch: Optional[Tensor] = None,
                    causal: bool = False, scale: Optional[float] = None) -> Tensor:
    r"""Softmax attention inside each graph, by the 3-pass cascade.

    Args:
        q, k: [N, H, K] queries and keys in PyG node order.
        v: [N, H, V] values.
        batch: [N] sorted graph index of each node (``None``: one graph).
        causal: node n attends only to nodes n' <= n of its graph.
        scale: score scale, default ``K ** -0.5`` as in ``scaled_dot_product_attention``.

    Returns:
        [N, H, V]; a row with no key to attend to is 0.
    """
    if q.size(0) == 0:  # no node: an empty output, still part of the autograd graph
        return v * 0
    scale = q.size(-1) ** -0.5 if scale is None else scale
    num_graphs = int(batch.max()) + 1 if batch is not None else 1
    Q, mask = to_dense_batch(q, batch, batch_size=num_graphs)  # [B, M, H, K]
    K, _ = to_dense_batch(k, batch, batch_size=num_graphs, max_num_nodes=Q.size(1))
    V, _ = to_dense_batch(v, batch, batch_size=num_graphs, max_num_nodes=Q.size(1))
    allowed = mask[:, None, None, :]  # [B, 1, 1, M]: keys that are nodes
    if causal:
        allowed = allowed & torch.ones(Q.size(1), Q.size(1), dtype=torch.bool,
                                       device=q.device).tril()

    QK = torch.einsum("bnhk,bmhk->bhnm", Q * scale, K).masked_fill(~allowed, float("-inf"))
    GM = QK.detach().amax(-1, keepdim=True)  # a shift that cancels in A: no gradient
    GM = GM.masked_fill(GM == float("-inf"), 0.0)  # a row without keys: SN = 0, not NaN
    SN = torch.exp(QK - GM)
    SD = SN.sum(-1, keepdim=True)
    A = SN / SD.masked_fill(SD == 0, 1.0)
    AV = torch.einsum("bhnm,bmhv->bnhv", A, V)
    return AV[mask]
