"""pLSTM beside a local message-passing layer: GraphGPS's block with pLSTM as its global part."""
import torch
from torch import Tensor
from torch_geometric.nn.inits import reset

from ..graph.line_graph import LineGraph
from .plstm_conv import PLSTMConv


class LocalGlobalMixer(torch.nn.Module):
    r"""A pLSTM layer and a local message-passing layer side by side, their outputs summed:

    .. math::
        y = \mathrm{PLSTMConv}(x, \mathcal L(G), f) + \mathrm{local}(x, E, f)

    GraphGPS (Rampášek et al. 2022) mixes each block this way with a global attention layer; here
    pLSTM is the global part (it reaches every ancestor along the DAG, or every descendant on
    its reverse) and the local layer (e.g. GINE) reads each node's neighbours along the input
    edges :math:`E`, in both directions where the data is undirected, as GIN does.

    Args:
        plstm: the pLSTM layer.
        local: a layer called as ``local(x, edge_index, edge_attr)``, mapping the pLSTM's
            ``in_channels`` to its ``out_channels``.

    Shapes:
        - **input:** :math:`(N, F_{in})`, the pLSTM's line graph (or ``edge_index``), the input
          edges :math:`(2, E_{in})` and their features :math:`(E_{in}, D_e)`
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, plstm: PLSTMConv, local: torch.nn.Module):
        super().__init__()
        self.plstm, self.local = plstm, local

    def reset_parameters(self):
        self.plstm.reset_parameters()
        reset(self.local)

    def forward(self, x: Tensor, line_graph: LineGraph | Tensor, edge_index: Tensor,
                edge_attr: Tensor | None = None) -> Tensor:
        return self.plstm(x, line_graph, edge_attr) + self.local(x, edge_index, edge_attr)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.plstm}, local={self.local})"
