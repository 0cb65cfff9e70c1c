"""The readable reference: a Child-Sum Tree-LSTM on a DAG, one node at a time.

Tai et al. (2015), with a node's predecessors in place of a tree node's children; for a node
``n`` with predecessors ``P(n)`` and input contributions ``g_n = W x_n + b`` (split into the
input, output, update and forget parts)::

    h~_n  = sum_{p in P(n)} a_np h_p          a_np = 1, or softmax_p(w . h_p) with attention
    i_n   = sigmoid(g_n^i + U_i h~_n)         o_n = sigmoid(g_n^o + U_o h~_n)
    u_n   = tanh(g_n^u + U_u h~_n)            f_np = sigmoid(g_n^f + U_f h_p)
    c_n   = i_n * u_n + sum_{p in P(n)} f_np * c_p
    h_n   = o_n * tanh(c_n)

Nodes are visited in a topological order, so every predecessor is done before its successor.
"""
import torch
import torch.nn.functional as F
from torch import Tensor

from ...graph.node_levels import NodeSchedule


def aggregate(h_pred: Tensor, attention: Tensor | None) -> Tensor:
    """``h~``: the sum of the predecessors' states ``[P, D]``, attention-weighted if given."""
    if attention is None:
        return h_pred.sum(0)
    return (torch.softmax(h_pred @ attention, 0)[:, None] * h_pred).sum(0)


def dag_lstm_reference(gates: Tensor, weight_iou: Tensor, weight_f: Tensor, graph: NodeSchedule,
                       attention: Tensor | None = None) -> Tensor:
    predecessors = [[] for _ in range(graph.num_nodes)]
    for s, d in graph.edge_index.t().tolist():
        predecessors[d].append(s)

    hidden = gates.size(-1)
    node_gates = gates.unbind(0)  # one backward for all rows (gates[n] would cost O(N) each)
    h, c = [None] * graph.num_nodes, [None] * graph.num_nodes
    for n in torch.sort(graph.depth, stable=True).indices.tolist():
        g = node_gates[n]
        if predecessors[n]:
            h_pred = torch.stack([h[p] for p in predecessors[n]])
            c_pred = torch.stack([c[p] for p in predecessors[n]])
            h_sum = aggregate(h_pred, attention)
        else:
            h_pred = c_pred = gates.new_zeros(0, hidden)
            h_sum = gates.new_zeros(hidden)
        i, o, u = (g[:3] + F.linear(h_sum, weight_iou).view(3, hidden)).unbind(0)
        f = torch.sigmoid(g[3] + F.linear(h_pred, weight_f))
        c[n] = torch.sigmoid(i) * torch.tanh(u) + (f * c_pred).sum(0)
        h[n] = torch.sigmoid(o) * torch.tanh(c[n])
    return torch.stack(h) if h else gates.new_zeros(0, hidden)
