"""The attention baseline's block: full multi-head attention among each graph's nodes."""
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, RMSNorm

from ..ops.attention import einsum_attention
from .plstm_block import mlp


class GraphTransformerBlock(torch.nn.Module):
    r"""A pre-norm transformer block over the nodes of each graph of a batch:

    .. math::
        \mathbf{X} &\leftarrow \mathbf{X} + \mathbf{W}_o \operatorname{Attn}\left(
            \mathbf{W}_q \bar{\mathbf{X}}, \mathbf{W}_k \bar{\mathbf{X}},
            \mathbf{W}_v \bar{\mathbf{X}} \right),
            \quad \bar{\mathbf{X}} = \operatorname{RMSNorm}(\mathbf{X})

        \mathbf{X} &\leftarrow \mathbf{X} + \operatorname{MLP}(\operatorname{RMSNorm}(\mathbf{X}))

    where Attn is softmax attention per head among the nodes of the same graph, scaled by
    :math:`(\text{channels} / \text{heads})^{-1/2}`, computed by
    :func:`~plstm_graph.einsum_attention`, and MLP is Linear(d, ``mlp_ratio`` d) -> GELU ->
    Linear(``mlp_ratio`` d, d). It has the residual layout of
    :class:`~plstm_graph.nn.PLSTMBlock`, so models can swap one for the other; it ignores
    edges (every pair of nodes in a graph interacts).

    Args:
        channels (int): feature size d (divisible by ``heads``).
        heads (int): attention heads.
        mlp_ratio (int): hidden size of the MLP, in multiples of d.
        dropout (float): dropout on the output of each residual branch while training.
        passes (int): attention cascade, 1, 2 or 3 (see :func:`~plstm_graph.einsum_attention`).
        chunk_size (int): keys per chunk of the 1- and 2-pass cascades.

    Shapes:
        - **input:** node features :math:`(N, d)`, batch vector :math:`(N)` (sorted, as in
          a PyG ``Batch``; ``None`` for a single graph)
        - **output:** :math:`(N, d)`
    """

    def __init__(self, channels: int, heads: int = 4, mlp_ratio: int = 4, dropout: float = 0.0,
                 passes: int = 1, chunk_size: int = 64):
        super().__init__()
        if heads < 1 or channels % heads:
            raise ValueError(f"`heads` must be a positive divisor of `channels` ({channels}), "
                             f"got {heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}")
        if passes not in (1, 2, 3):
            raise ValueError(f"`passes` must be 1, 2 or 3, got {passes!r}")
        if chunk_size < 1:
            raise ValueError(f"`chunk_size` must be positive, got {chunk_size}")
        self.channels, self.heads, self.mlp_ratio = channels, heads, mlp_ratio
        self.dropout, self.passes, self.chunk_size = dropout, passes, chunk_size
        self.norm1, self.norm2 = RMSNorm(channels, eps=1e-5), RMSNorm(channels, eps=1e-5)
        self.lin_query = Linear(channels, channels, bias=False)
        self.lin_key = Linear(channels, channels, bias=False)
        self.lin_value = Linear(channels, channels, bias=False)
        self.lin_out = Linear(channels, channels, bias=False)
        self.mlp = mlp(channels, mlp_ratio)
        self.reset_parameters()

    def reset_parameters(self):
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()
        for lin in (self.lin_query, self.lin_key, self.lin_value, self.lin_out):
            lin.reset_parameters()
        for layer in self.mlp:
            if isinstance(layer, Linear):
                layer.reset_parameters()

    def attention(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        r"""The attention branch, ``W_o Attn(W_q x, W_k x, W_v x)`` (no norm, no residual)."""
        heads = (x.size(0), self.heads, self.channels // self.heads)
        q, k, v = (lin(x).view(heads) for lin in (self.lin_query, self.lin_key, self.lin_value))
        out = einsum_attention(q, k, v, batch, passes=self.passes, chunk_size=self.chunk_size)
        return self.lin_out(out.reshape(x.size(0), self.channels))

    def forward(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        x = x + F.dropout(self.attention(self.norm1(x), batch), self.dropout, self.training)
        return x + F.dropout(self.mlp(self.norm2(x)), self.dropout, self.training)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, heads={self.heads}, "
                f"passes={self.passes}, chunk_size={self.chunk_size})")
