"""The pre-norm residual pLSTM block and the paper's arrangement of blocks."""
from torch import Tensor

from ..graph.line_graph import LineGraph
from .plstm_conv import PLSTMConv
from .residual_block import ResidualBlock


def plstm_layer_plan(num_layers: int) -> list[tuple[str, bool]]:
    """``(mode, reverse)`` of each layer in the paper's arrangement: a pLSTM block is a P-mode
    layer followed by a D-mode layer, and successive layers alternate the DAG and its reverse."""
    return [("P" if i % 2 == 0 else "D", i % 2 == 1) for i in range(num_layers)]


class PLSTMBlock(ResidualBlock):
    r"""``x + PLSTMConv(RMSNorm(x))`` followed by ``x + MLP(RMSNorm(x))``.

    Shapes:
        - **input:** :math:`(N, F)`, a :class:`~plstm_graph.LineGraph` (or ``edge_index``) and
          optional edge features :math:`(E_{in}, D_e)`
        - **output:** :math:`(N, F)`
    """

    def __init__(self, channels: int, heads: int = 4, mode: str = "P", edge_dim: int | None = None,
                 reverse: bool = False, mlp_ratio: int = 4, dropout: float = 0.0, **conv_kwargs):
        conv = PLSTMConv(channels, channels, heads=heads, mode=mode, edge_dim=edge_dim,
                         reverse=reverse, **conv_kwargs)
        super().__init__(conv, channels, mlp_ratio, dropout)

    @property
    def conv(self) -> PLSTMConv:
        return self.mixer

    def forward(self, x: Tensor, edge_index: Tensor | LineGraph, edge_attr: Tensor | None = None):
        return super().forward(x, edge_index, edge_attr)
