"""A global layer beside a local message-passing layer: GraphGPS's block."""
import torch
from torch import Tensor
from torch_geometric.nn.inits import reset


class LocalGlobalMixer(torch.nn.Module):
    r"""A global layer and a local message-passing layer side by side, their outputs summed:

    .. math::
        y = \mathrm{global}(x, \dots) + \mathrm{local}(x, E, f)

    GraphGPS (Rampášek et al. 2022) mixes each block this way, with attention among a graph's
    nodes as the global part. Here the global part is pLSTM (:class:`~plstm_graph.PLSTMConv`:
    it reaches every ancestor along the DAG, or every descendant on its reverse) or the
    attention baseline (:class:`~plstm_graph.nn.GraphAttention`: GraphGPS itself). The local
    layer (e.g. GINE) reads each node's neighbours along the input edges :math:`E`, in both
    directions where the data is undirected, as GIN does.

    Args:
        global_layer: the global layer, called with ``x`` and whatever :meth:`forward` is given
            besides the local layer's inputs.
        local: a layer called as ``local(x, edge_index, edge_attr)``, with the global layer's
            input and output sizes.

    Shapes:
        - **input:** :math:`(N, F_{in})`, the global layer's other arguments, the input edges
          ``local_edge_index`` :math:`(2, E_{in})` and their features ``local_edge_attr``
          :math:`(E_{in}, D_e)`
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, global_layer: torch.nn.Module, local: torch.nn.Module):
        super().__init__()
        self.global_layer, self.local = global_layer, local

    def reset_parameters(self):
        self.global_layer.reset_parameters()
        reset(self.local)

    def forward(self, x: Tensor, *global_args, local_edge_index: Tensor,
                local_edge_attr: Tensor | None = None, **global_kwargs) -> Tensor:
        return (self.global_layer(x, *global_args, **global_kwargs)
                + self.local(x, local_edge_index, local_edge_attr))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.global_layer}, local={self.local})"


def beside(global_layer: torch.nn.Module, local: torch.nn.Module | None) -> torch.nn.Module:
    """A block's mixing layer: ``global_layer`` alone, or with ``local`` beside it."""
    return global_layer if local is None else LocalGlobalMixer(global_layer, local)


def parts(mixer: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """``(global layer, local layer or None)`` of a mixing layer made by :func:`beside`."""
    if isinstance(mixer, LocalGlobalMixer):
        return mixer.global_layer, mixer.local
    return mixer, None
