"""A pre-norm residual block around any torch_geometric message-passing layer."""
import torch
from torch import Tensor
from torch.nn import Linear, RMSNorm

from .plstm_block import mlp


class ConvBlock(torch.nn.Module):
    r"""``x + conv(RMSNorm(x))`` followed by ``x + MLP(RMSNorm(x))``: the same block as
    :class:`~plstm_graph.nn.PLSTMBlock` with a baseline layer (GIN, GCN, GAT, ...) mixing.

    Args:
        conv: a layer called as ``conv(x, edge_index)`` or, when ``uses_edge_attr``,
            ``conv(x, edge_index, edge_attr)``, mapping ``channels`` to ``channels``.
        channels: feature size.
        uses_edge_attr: pass edge features to ``conv``.

    Shapes:
        - **input:** :math:`(N, F)`, ``edge_index`` :math:`(2, E)`, optional :math:`(E, D_e)`
        - **output:** :math:`(N, F)`
    """

    def __init__(self, conv: torch.nn.Module, channels: int, uses_edge_attr: bool = False,
                 mlp_ratio: int = 4):
        super().__init__()
        self.conv, self.uses_edge_attr = conv, uses_edge_attr
        self.norm1, self.norm2 = RMSNorm(channels, eps=1e-5), RMSNorm(channels, eps=1e-5)
        self.mlp = mlp(channels, mlp_ratio)

    def reset_parameters(self):
        self.conv.reset_parameters()
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()
        for layer in self.mlp:
            if isinstance(layer, Linear):
                layer.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None) -> Tensor:
        h = self.norm1(x)
        h = self.conv(h, edge_index, edge_attr) if self.uses_edge_attr else self.conv(h, edge_index)
        x = x + h
        return x + self.mlp(self.norm2(x))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.conv})"
