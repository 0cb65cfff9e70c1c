"""Level-batched Child-Sum DAG-LSTM: every node of one level, across all graphs of a batch, at
once (the recurrence of ``naive.py``).

Each level's states are a tensor of their own, and a level reads its predecessors' rows from the
earlier levels' tensors with one gather per (target level, source level) pair. Nothing is written
in place, so plain autograd differentiates the sweep, and no step copies more than the rows it
reads: a 10,000-node chain costs 10,000 small steps, not 10,000 copies of all states.
"""
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import softmax

from ...graph.node_levels import LevelInputs, NodeSchedule


def _gather(states: list, inputs: LevelInputs) -> Tensor:
    """Rows of earlier levels' ``states`` for every edge into a level, in ``inputs``' order."""
    parts = [states[level] if rows is None else states[level].index_select(0, rows)
             for level, rows in inputs.sources]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _sum_into(rows: Tensor, target: Tensor, size: int) -> Tensor:
    """``out[t] = sum of rows[e] with target[e] == t``: ``[size, D]`` (out of place)."""
    return rows.new_zeros(size, rows.size(-1)).index_add(0, target, rows)


def dag_lstm_levels(gates: Tensor, weight_iou: Tensor, weight_f: Tensor, graph: NodeSchedule,
                    attention: Tensor | None = None) -> Tensor:
    hidden = gates.size(-1)
    weight = torch.cat([weight_iou, weight_f])  # U_{i,o,u,f}, for nodes with one predecessor
    # One split, not a slice per level: the backward of a slice is a zero tensor of the full
    # size, which would make a deep DAG quadratic.
    level_gates = gates.index_select(0, graph.order).split(graph.level_sizes)
    hs, cs = [], []
    for g, inputs in zip(level_gates, graph.inputs):
        if inputs is None:  # level 0: no predecessors, h~ = 0
            i, o, u = g[:, :3].unbind(1)
            c = torch.sigmoid(i) * torch.tanh(u)
        elif inputs.one_each:  # h~ = h_p (an attention weight over one predecessor is 1)
            h_pred, c_pred = _gather(hs, inputs), _gather(cs, inputs)
            i, o, u, f = (g + F.linear(h_pred, weight).view(g.shape)).unbind(1)
            c = torch.sigmoid(i) * torch.tanh(u) + torch.sigmoid(f) * c_pred
        else:
            size, target = g.size(0), inputs.target
            h_pred, c_pred = _gather(hs, inputs), _gather(cs, inputs)
            weighted = h_pred
            if attention is not None:
                weighted = softmax(h_pred @ attention, target, num_nodes=size)[:, None] * h_pred
            h_sum = _sum_into(weighted, target, size)
            i, o, u = (g[:, :3] + F.linear(h_sum, weight_iou).view(size, 3, hidden)).unbind(1)
            f = torch.sigmoid(g[:, 3].index_select(0, target) + F.linear(h_pred, weight_f))
            c = torch.sigmoid(i) * torch.tanh(u) + _sum_into(f * c_pred, target, size)
        hs.append(torch.sigmoid(o) * torch.tanh(c))
        cs.append(c)
    if not hs:
        return gates.new_zeros(0, hidden)
    return torch.cat(hs).index_select(0, graph.rank)
