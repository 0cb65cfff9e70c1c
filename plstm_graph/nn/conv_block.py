"""A pre-norm residual block around any torch_geometric message-passing layer."""
import torch
from torch import Tensor

from .residual_block import ResidualBlock


class ConvBlock(ResidualBlock):
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
        super().__init__(conv, channels, mlp_ratio)
        self.uses_edge_attr = uses_edge_attr

    @property
    def conv(self) -> torch.nn.Module:
        return self.mixer

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None) -> Tensor:
        if self.uses_edge_attr:
            return super().forward(x, edge_index, edge_attr)
        return super().forward(x, edge_index)
