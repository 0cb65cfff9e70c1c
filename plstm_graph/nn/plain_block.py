"""A message-passing layer stacked as the classic GNN papers stack it: no residual, no pre-norm."""
import torch
from torch import Tensor
from torch.nn import BatchNorm1d, Linear, ReLU, Sequential
from torch_geometric.nn import GINConv


def classic_gin(channels: int) -> GINConv:
    """GIN's layer as Xu et al. (2019) and the pLSTM paper's official code build it:
    ``GINConv`` with ``eps = 0`` fixed and the MLP ``Linear -> BatchNorm -> ReLU -> Linear``."""
    return GINConv(Sequential(Linear(channels, channels), BatchNorm1d(channels), ReLU(),
                              Linear(channels, channels)), train_eps=False)


class PlainConvBlock(torch.nn.Module):
    r"""``ReLU(BatchNorm(conv(x)))`` (``batch_norm=True``, GIN's stack) or ``ReLU(conv(x))`` (GCN's
    and GAT's): each layer replaces the node features, with no residual connection, no
    pre-norm and no MLP after it. These are the baselines of the pLSTM paper's official graph
    code (ml-jku/plstm_experiments ``plstm_graph/src/models``; SPEC section 6), where
    :class:`~plstm_graph.nn.ConvBlock` puts every model in the same residual block.

    Like those baselines it reads node features only: ``edge_attr`` is taken, so that it is
    called as a :class:`~plstm_graph.nn.ConvBlock` is, and ignored.

    Args:
        conv: a layer called as ``conv(x, edge_index)``, mapping ``channels`` to ``channels``.
        channels: feature size.
        batch_norm: a ``BatchNorm1d`` between the layer and the ReLU.

    Shapes:
        - **input:** :math:`(N, F)`, ``edge_index`` :math:`(2, E)`
        - **output:** :math:`(N, F)`
    """

    def __init__(self, conv: torch.nn.Module, channels: int, batch_norm: bool = False):
        super().__init__()
        self.conv = conv
        self.norm = BatchNorm1d(channels) if batch_norm else None

    def reset_parameters(self):
        self.conv.reset_parameters()
        if self.norm is not None:
            self.norm.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None) -> Tensor:
        x = self.conv(x, edge_index)
        if self.norm is not None:
            x = self.norm(x)
        return x.relu()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.conv}"
                f"{', batch_norm=True' if self.norm is not None else ''})")
