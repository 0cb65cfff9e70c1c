"""The attention baseline: full multi-head attention among each graph's nodes, and its block."""
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear

from ..ops.attention import einsum_attention
from ..ops.attention.tiles import Tiles
from .local_global import beside, parts
from .residual_block import ResidualBlock


class GraphAttention(torch.nn.Module):
    r"""``W_o Attn(W_q x, W_k x, W_v x)``: softmax attention per head among the nodes of the
    same graph, scaled by :math:`(\text{channels} / \text{heads})^{-1/2}`, computed by
    :func:`~plstm_graph.einsum_attention`. Edges are ignored: every pair of nodes interacts.

    Shapes:
        - **input:** node features :math:`(N, d)`, batch vector :math:`(N)` (sorted, as in
          a PyG ``Batch``; ``None`` for a single graph), optionally the batch's
          :meth:`layout`, built once and shared by the layers that see the same batch
        - **output:** :math:`(N, d)`
    """

    def __init__(self, channels: int, heads: int = 4, passes: int = 1, chunk_size: int = 64):
        super().__init__()
        if heads < 1 or channels % heads:
            raise ValueError(f"`heads` must be a positive divisor of `channels` ({channels}), "
                             f"got {heads}")
        if passes not in (1, 2, 3):
            raise ValueError(f"`passes` must be 1, 2 or 3, got {passes!r}")
        if chunk_size < 1:
            raise ValueError(f"`chunk_size` must be positive, got {chunk_size}")
        self.channels, self.heads, self.passes, self.chunk_size = channels, heads, passes, chunk_size
        self.lin_query = Linear(channels, channels, bias=False)
        self.lin_key = Linear(channels, channels, bias=False)
        self.lin_value = Linear(channels, channels, bias=False)
        self.lin_out = Linear(channels, channels, bias=False)

    def reset_parameters(self):
        for lin in (self.lin_query, self.lin_key, self.lin_value, self.lin_out):
            lin.reset_parameters()

    def layout(self, batch: Tensor | None, num_nodes: int) -> Tiles | None:
        """The cascade's tile layout of ``batch`` (``None`` for the 3-pass one, which has none):
        pass it to :meth:`forward` of every layer with the same ``chunk_size`` on this batch."""
        return None if self.passes == 3 else Tiles.from_batch(batch, num_nodes, self.chunk_size)

    def forward(self, x: Tensor, batch: Tensor | None = None, tiles: Tiles | None = None) -> Tensor:
        # One product for the three projections (one GEMM forward, two backward).
        weight = torch.cat([self.lin_query.weight, self.lin_key.weight, self.lin_value.weight])
        qkv = F.linear(x, weight).view(x.size(0), 3, self.heads, self.channels // self.heads)
        q, k, v = qkv.unbind(1)
        out = einsum_attention(q, k, v, batch, passes=self.passes, chunk_size=self.chunk_size,
                               tiles=tiles)
        return self.lin_out(out.reshape(x.size(0), self.channels))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, heads={self.heads}, "
                f"passes={self.passes}, chunk_size={self.chunk_size})")


class GraphTransformerBlock(ResidualBlock):
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
    edges (every pair of nodes in a graph interacts). With a ``local`` layer beside the
    attention, the first step is ``X + Attn(...) + local(RMSNorm(X))``
    (:class:`~plstm_graph.nn.local_global.LocalGlobalMixer`): GraphGPS's block (Rampášek et
    al. 2022), which reads the edges through its local layer.

    Args:
        channels (int): feature size d (divisible by ``heads``).
        heads (int): attention heads.
        mlp_ratio (int): hidden size of the MLP, in multiples of d.
        dropout (float): dropout on the output of each residual branch while training.
        passes (int): attention cascade, 1, 2 or 3 (see :func:`~plstm_graph.einsum_attention`).
        chunk_size (int): keys per chunk of the 1- and 2-pass cascades.
        local: a message-passing layer called as ``local(x, edge_index, edge_attr)`` beside the
            attention, or ``None``.

    Shapes:
        - **input:** node features :math:`(N, d)`, batch vector :math:`(N)` (sorted, as in
          a PyG ``Batch``; ``None`` for a single graph), and for a ``local`` layer the edges
          ``edge_index`` :math:`(2, E)` with optional features :math:`(E, D_e)`
        - **output:** :math:`(N, d)`
    """

    def __init__(self, channels: int, heads: int = 4, mlp_ratio: int = 4, dropout: float = 0.0,
                 passes: int = 1, chunk_size: int = 64, local: torch.nn.Module | None = None):
        super().__init__(beside(GraphAttention(channels, heads, passes, chunk_size), local),
                         channels, mlp_ratio, dropout)
        self.reset_parameters()

    @property
    def attention(self) -> GraphAttention:
        return parts(self.mixer)[0]

    def forward(self, x: Tensor, batch: Tensor | None = None, tiles: Tiles | None = None,
                edge_index: Tensor | None = None, edge_attr: Tensor | None = None) -> Tensor:
        if self.local is None:
            return super().forward(x, batch, tiles=tiles)
        if edge_index is None:
            raise ValueError("edge_index is required: this block has a local layer")
        return super().forward(x, batch, tiles=tiles, local_edge_index=edge_index,
                               local_edge_attr=edge_attr)

    def forward_shared(self, x: Tensor, inputs) -> Tensor:
        """:meth:`forward` on a model's batch (a :class:`~plstm_graph.nn.BlockInputs`), with the
        tile layout built once per batch and shared by every block of the same chunk size."""
        attention = self.attention
        tiles = inputs.cached(("attention_tiles", attention.passes, attention.chunk_size),
                              lambda: attention.layout(inputs.batch, x.size(0)))
        return self(x, inputs.batch, tiles=tiles, edge_index=inputs.edge_index,
                    edge_attr=inputs.edge_attr)

    def __repr__(self) -> str:
        return repr(self.mixer).replace(type(self.mixer).__name__, type(self).__name__, 1)
