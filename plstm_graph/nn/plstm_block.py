"""The pre-norm residual pLSTM block and the paper's arrangement of blocks."""
import torch
from torch import Tensor
from torch.nn import GELU, Linear, RMSNorm, Sequential

from ..graph.line_graph import LineGraph
from .plstm_conv import PLSTMConv


def mlp(channels: int, ratio: int = 4) -> Sequential:
    """``Linear(d, ratio d) -> GELU -> Linear(ratio d, d)``, the block's feed-forward part."""
    return Sequential(Linear(channels, ratio * channels), GELU(), Linear(ratio * channels, channels))


def plstm_layer_plan(num_layers: int) -> list[tuple[str, bool]]:
    """``(mode, reverse)`` of each layer in the paper's arrangement: a pLSTM block is a P-mode
    layer followed by a D-mode layer, and successive layers alternate the DAG and its reverse."""
    return [("P" if i % 2 == 0 else "D", i % 2 == 1) for i in range(num_layers)]


class PLSTMBlock(torch.nn.Module):
    r"""``x + PLSTMConv(RMSNorm(x))`` followed by ``x + MLP(RMSNorm(x))``.

    Shapes:
        - **input:** :math:`(N, F)`, a :class:`~plstm_graph.LineGraph` (or ``edge_index``) and
          optional edge features :math:`(E_{in}, D_e)`
        - **output:** :math:`(N, F)`
    """

    def __init__(self, channels: int, heads: int = 4, mode: str = "P", edge_dim: int | None = None,
                 reverse: bool = False, mlp_ratio: int = 4, **conv_kwargs):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(channels, eps=1e-5), RMSNorm(channels, eps=1e-5)
        self.conv = PLSTMConv(channels, channels, heads=heads, mode=mode, edge_dim=edge_dim,
                              reverse=reverse, **conv_kwargs)
        self.mlp = mlp(channels, mlp_ratio)

    def reset_parameters(self):
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()
        self.conv.reset_parameters()
        for layer in self.mlp:
            if isinstance(layer, Linear):
                layer.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | LineGraph, edge_attr: Tensor | None = None):
        x = x + self.conv(self.norm1(x), edge_index, edge_attr)
        return x + self.mlp(self.norm2(x))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.conv})"
