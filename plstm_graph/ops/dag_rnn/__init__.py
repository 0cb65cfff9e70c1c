"""Node-recurrent DAG models (Child-Sum Tree-LSTM on DAGs): the per-node reference beside the
level-batched kernel, and :func:`dag_lstm` checking its arguments and dispatching."""
from torch import Tensor

from ...graph.node_levels import NodeSchedule
from ...graph.validation import check_one_of, check_shape
from .levels import dag_lstm_levels
from .naive import dag_lstm_reference

BACKENDS = ("levels", "reference")


def dag_lstm(gates: Tensor, weight_iou: Tensor, weight_f: Tensor, graph: NodeSchedule,
             attention: Tensor | None = None, backend: str = "levels") -> Tensor:
    r"""Child-Sum Tree-LSTM (Tai et al. 2015) on a DAG: a node's predecessors play its children.

    With input contributions :math:`g_n = W x_n + b` split into :math:`(g^i, g^o, g^u, g^f)`:

    .. math::
        \tilde h_n &= \textstyle\sum_{p \to n} a_{np} h_p, \qquad
        a_{np} = 1 \ \text{or, with attention,} \ \operatorname{softmax}_{p \to n}(w^\top h_p) \\
        i_n, o_n, u_n &= \sigma, \sigma, \tanh\big(g_n^{i,o,u} + U_{i,o,u} \tilde h_n\big), \qquad
        f_{np} = \sigma(g_n^f + U_f h_p) \\
        c_n &= i_n \odot u_n + \textstyle\sum_{p \to n} f_{np} \odot c_p, \qquad
        h_n = o_n \odot \tanh c_n

    Args:
        gates: input contributions, bias included, in the order input, output, update, forget.
        weight_iou: :math:`[U_i; U_o; U_u]` in ``torch.nn.Linear`` layout.
        weight_f: :math:`U_f` in ``torch.nn.Linear`` layout.
        graph: the DAG's :class:`~plstm_graph.graph.node_levels.NodeSchedule`.
        attention: :math:`w`, or ``None`` for the plain child sum.
        backend: ``"levels"`` (every node of a level at once) or ``"reference"`` (node by node).

    Shapes:
        gates ``[N, 4, D]``; weight_iou ``[3 D, D]``; weight_f ``[D, D]``; attention ``[D]``;
        output :math:`h` ``[N, D]``.
    """
    if not isinstance(graph, NodeSchedule):
        raise ValueError(f"graph must be a NodeSchedule (see node_schedule), got {type(graph).__name__}")
    check_one_of(backend, "backend", BACKENDS)
    check_shape(gates, "gates", (graph.num_nodes, 4, None))
    hidden = gates.size(-1)
    check_shape(weight_iou, "weight_iou", (3 * hidden, hidden))
    check_shape(weight_f, "weight_f", (hidden, hidden))
    if attention is not None:
        check_shape(attention, "attention", (hidden,))
    kernel = dag_lstm_levels if backend == "levels" else dag_lstm_reference
    return kernel(gates, weight_iou, weight_f, graph, attention)


__all__ = ["BACKENDS", "dag_lstm", "dag_lstm_levels", "dag_lstm_reference"]
