"""The pre-norm residual pLSTM block and the paper's arrangement of blocks."""
import torch
from torch import Tensor

from ..graph.line_graph import LineGraph
from .local_global import beside, parts
from .plstm_conv import PLSTMConv
from .residual_block import ResidualBlock


def plstm_layer_plan(num_layers: int) -> list[tuple[str, bool]]:
    """``(mode, reverse)`` of each layer in the paper's arrangement: a pLSTM block is a P-mode
    layer followed by a D-mode layer, and successive layers alternate the DAG and its reverse."""
    return [("P" if i % 2 == 0 else "D", i % 2 == 1) for i in range(num_layers)]


class PLSTMBlock(ResidualBlock):
    r"""``x + PLSTMConv(RMSNorm(x))`` followed by ``x + MLP(RMSNorm(x))``; with a ``local``
    layer, ``x + PLSTMConv(RMSNorm(x)) + local(RMSNorm(x))`` first
    (:class:`~plstm_graph.nn.local_global.LocalGlobalMixer`).

    Args:
        local: a message-passing layer called as ``local(x, edge_index, edge_attr)`` beside the
            pLSTM layer, or ``None``.

    Shapes:
        - **input:** :math:`(N, F)`, a :class:`~plstm_graph.LineGraph` (or ``edge_index``),
          optional edge features :math:`(E_{in}, D_e)`, and for a ``local`` layer the input
          edges ``local_edge_index`` :math:`(2, E_{in})` (default: ``edge_index`` when it is
          a tensor)
        - **output:** :math:`(N, F)`
    """

    def __init__(self, channels: int, heads: int = 4, mode: str = "P", edge_dim: int | None = None,
                 reverse: bool = False, mlp_ratio: int = 4, dropout: float = 0.0,
                 local: torch.nn.Module | None = None, **conv_kwargs):
        conv = PLSTMConv(channels, channels, heads=heads, mode=mode, edge_dim=edge_dim,
                         reverse=reverse, **conv_kwargs)
        super().__init__(beside(conv, local), channels, mlp_ratio, dropout)

    @property
    def conv(self) -> PLSTMConv:
        return parts(self.mixer)[0]

    def forward(self, x: Tensor, edge_index: Tensor | LineGraph, edge_attr: Tensor | None = None,
                local_edge_index: Tensor | None = None):
        if self.local is None:
            return super().forward(x, edge_index, edge_attr)
        if local_edge_index is None:
            if not isinstance(edge_index, Tensor):
                raise ValueError("local_edge_index is required: this block has a local layer "
                                 "and edge_index is a LineGraph")
            local_edge_index = edge_index
        return super().forward(x, edge_index, edge_attr, local_edge_index=local_edge_index,
                               local_edge_attr=edge_attr)
