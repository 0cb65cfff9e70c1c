"""The DAG-recurrent baseline: a Child-Sum Tree-LSTM generalised to DAGs, and its registered model."""
import torch
from torch import Tensor
from torch.nn import Linear, Parameter

from ..graph.node_levels import NodeSchedule, prepare_node_schedule
from ..graph.orientation import ORIENTATIONS
from ..graph.validation import check_one_of, check_positive_int
from ..ops.dag_rnn import BACKENDS, dag_lstm
from .conv_block import ConvBlock
from .mixers import ARRANGEMENTS as PLSTM_ARRANGEMENTS
from .registry import BlockInputs, ModelSpec, register_model


class DAGLSTMConv(torch.nn.Module):
    r"""The Child-Sum Tree-LSTM of Tai et al. (2015) on a DAG: a node's predecessors play the
    role of a tree node's children, and nodes are updated in topological order, every node of one
    level (longest-path depth) over the whole batch at once.

    .. math::
        \tilde h_n &= \textstyle\sum_{p \to n} a_{np}\, h_p, \qquad
        a_{np} = 1 \ \text{(child sum) or} \ \operatorname{softmax}_{p \to n}(w^\top h_p)
        \ \text{(attention)} \\
        i_n &= \sigma(W_i x_n + U_i \tilde h_n + b_i), \quad
        o_n = \sigma(W_o x_n + U_o \tilde h_n + b_o), \quad
        u_n = \tanh(W_u x_n + U_u \tilde h_n + b_u) \\
        f_{np} &= \sigma(W_f x_n + U_f h_p + b_f), \qquad
        c_n = i_n \odot u_n + \textstyle\sum_{p \to n} f_{np} \odot c_p, \qquad
        h_n = o_n \odot \tanh c_n

    The attention variant is DAGNN's aggregation (Thost and Chen 2021,
    :math:`\operatorname{softmax}_p(w_1^\top x_n + w_2^\top h_p)`) without :math:`w_1^\top x_n`,
    which is the same for all predecessors of :math:`n` and cancels in the softmax. Nodes without
    predecessors start from :math:`\tilde h = 0`, :math:`c = i \odot u`. The output is
    :math:`h`.

    Args:
        in_channels: input features per node.
        out_channels: state size :math:`D` (the output features per node).
        reverse: run on the reversed DAG (sinks first), so information flows against the edges.
        attention: aggregate predecessors' states with attention instead of a plain sum.
        orientation: how a tensor ``edge_index`` becomes a DAG: ``"index"`` (undirected input,
            lower -> higher node index) or ``"given"`` (directed acyclic input, kept as is).
        backend: ``"levels"`` (level-batched) or ``"reference"`` (node by node, for checks).

    Shapes:
        - **input:** node features :math:`(N, F_{in})`; ``edge_index`` :math:`(2, E)` or a
          :class:`~plstm_graph.graph.node_levels.NodeSchedule` (used as given: it must already
          be the DAG in the direction this layer runs)
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, reverse: bool = False,
                 attention: bool = False, orientation: str = "index", backend: str = "levels"):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        check_one_of(orientation, "orientation", ORIENTATIONS)
        check_one_of(backend, "backend", BACKENDS)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.reverse, self.orientation, self.backend = reverse, orientation, backend
        self.lin = Linear(in_channels, 4 * out_channels)  # W_{i,o,u,f} x + b
        self.lin_iou = Linear(out_channels, 3 * out_channels, bias=False)  # U_{i,o,u}
        self.lin_f = Linear(out_channels, out_channels, bias=False)  # U_f
        if attention:
            self.attention = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("attention", None)
        self.reset_parameters()

    def reset_parameters(self):
        self.lin.reset_parameters()
        self.lin_iou.reset_parameters()
        self.lin_f.reset_parameters()
        if self.attention is not None:
            torch.nn.init.zeros_(self.attention)  # start as the mean over predecessors

    def schedule(self, x: Tensor, edge_index) -> NodeSchedule:
        if isinstance(edge_index, NodeSchedule):
            if edge_index.num_nodes != x.size(0):
                raise ValueError(f"edge_index has {edge_index.num_nodes} nodes but x has "
                                 f"{x.size(0)} rows")
            return edge_index
        return prepare_node_schedule(edge_index, x.size(0), self.orientation, self.reverse)

    def forward(self, x: Tensor, edge_index) -> Tensor:
        graph = self.schedule(x, edge_index)
        gates = self.lin(x).view(x.size(0), 4, self.out_channels)
        return dag_lstm(gates, self.lin_iou.weight, self.lin_f.weight, graph, self.attention,
                        backend=self.backend)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}"
                f"{', reverse=True' if self.reverse else ''}"
                f"{', attention=True' if self.attention is not None else ''})")


def node_schedule_of(inputs: BlockInputs, reverse: bool) -> NodeSchedule:
    """The batch's node schedule in one direction, built once and shared by every block."""
    return inputs.cached(("node_schedule", reverse),
                         lambda: prepare_node_schedule(inputs.edge_index, inputs.data.num_nodes,
                                                       inputs.orientation, reverse))


#: The DAG-LSTM's arrangements: the direction of each block as in pLSTM's plan of the same
#: name (:data:`~plstm_graph.nn.mixers.ARRANGEMENTS`; the DAG-LSTM has no modes to pair).
ARRANGEMENTS = ("alternate", "forward")


@register_model
class DAGLSTM(ModelSpec):
    """:class:`DAGLSTMConv` blocks.

    Args:
        arrangement: ``"alternate"``: the DAG (even blocks) and its reverse (odd blocks), so that
            after two blocks every node has seen its ancestors and descendants; ``"forward"``:
            every block along the DAG, as Tai et al.'s Tree-LSTM reads a phrase from its
            subtree (pLSTM's option of the same name).
    """

    name = "dag-lstm"
    description = ("Child-Sum Tree-LSTM on the DAG (Tai et al. 2015), by default alternating the DAG "
                   "and its reverse")
    attention = False

    def __init__(self, arrangement: str = "alternate"):
        check_one_of(arrangement, "arrangement", ARRANGEMENTS)
        self.arrangement = arrangement

    def layer_plan(self, num_layers):
        return [reverse for _, reverse in PLSTM_ARRANGEMENTS[self.arrangement](num_layers)]

    def init_block(self, hidden, heads, layer, edge_dim):
        return ConvBlock(DAGLSTMConv(hidden, hidden, reverse=layer, attention=self.attention), hidden)

    def call_block(self, block, x, inputs):
        return block(x, node_schedule_of(inputs, block.conv.reverse))


@register_model
class DAGLSTMAttention(DAGLSTM):
    """:class:`DAGLSTM` with DAGNN-style attention over each node's predecessors."""

    name = "dag-lstm-attention"
    description = "DAG-LSTM with DAGNN-style attention over predecessors (Thost and Chen 2021)"
    attention = True
