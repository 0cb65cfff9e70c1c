"""The pLSTM graph layer."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, Parameter

from ..graph.line_graph import MODES, LineGraph
from ..graph.prepare import prepare_dag
from ..ops.plstm import BACKENDS, plstm

GATE_BIAS = -5.0  # Source, Mark and Direct start near sigmoid(-5) ~ 0.007, as in the paper.


def p_mode_transition(raw: Tensor, graph: LineGraph) -> Tensor:
    """Paper Eq. 9, as the reference code does it: ``t / (0.5 + sum |t|)`` over the line edges
    leaving the same line node, so each line node passes on less than all it holds."""
    e_in = graph.line_index[0]
    outflow = raw.new_zeros(graph.num_edges, *raw.shape[1:]).index_add(0, e_in, raw.abs())
    return raw / (0.5 + outflow[e_in])


class PLSTMConv(torch.nn.Module):
    r"""The pLSTM layer of Pöppel et al. (arXiv 2506.11997) on the line graph of a DAG.

    For every head, with :math:`q_n = W_q x_n / \sqrt{K}`, :math:`k_n = W_k x_n`,
    :math:`v_n = W_v x_n`, and for a DAG edge :math:`e = (a \to n)`, a line edge
    :math:`e' = (a' \to n) \to e = (n \to b)`:

    .. math::
        S_e &= \sigma(W_S [x_a \,\|\, f_e]), \quad M_e = \sigma(W_M [x_n \,\|\, f_e]),
        \quad D_n = \sigma(W_D x_n) \\
        \tilde T_{e' \to e} &= W_T [x_n \,\|\, f_{e'} \,\|\, f_e]
        \quad (\text{without edge features: } [x_n \,\|\, x_{a'} \,\|\, x_b]) \\
        T &= \tilde T / (0.5 + \textstyle\sum_{e' \to e''} |\tilde T_{e' \to e''}|)
        \ \text{(P-mode)}, \qquad T = \tanh \tilde T \ \text{(D-mode, pruned multitree)} \\
        C_e &= S_e\, k_a v_a^\top + \textstyle\sum_{e' \to e} T_{e' \to e}\, C_{e'}, \qquad
        h_n = \textstyle\sum_{e \to n} M_e\, C_e^\top q_n + D_n (q_n \cdot k_n)\, v_n \\
        y_n &= W_O\, \big\|_h\, \mathrm{RMSNorm}_h(h_n)

    P-mode's normalisation keeps every line node's outgoing transitions at most 1 in absolute
    sum (paper Eq. 9), so propagation over long paths neither explodes nor needs pruning.

    Args:
        in_channels: input features per node.
        out_channels: output features per node.
        heads: number of independent heads :math:`H`.
        mode: ``"P"`` (directed propagation) or ``"D"`` (diffusive, on the pruned multitree).
        edge_dim: edge feature size, or ``None`` for graphs without edge features.
        key_dim: :math:`K` per head (default: the value size).
        value_dim: :math:`V` per head (default: ``out_channels // heads``).
        reverse: when building the DAG itself (``edge_index`` is a tensor), run on its reverse.
        orientation: how a tensor ``edge_index`` is oriented (see :func:`~plstm_graph.prepare_dag`).
        backend: kernel backend (see :func:`~plstm_graph.plstm`).
        recompute: recompute cell states in backward instead of storing them.

    Shapes:
        - **input:** node features :math:`(N, F_{in})`; ``edge_index`` :math:`(2, E_{in})` or a
          :class:`~plstm_graph.LineGraph` (used as given: its direction and mode must be what
          the layer wants); edge features :math:`(E_{in}, D_e)` in input column order, optional.
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 4, mode: str = "P",
                 edge_dim: int | None = None, key_dim: int | None = None,
                 value_dim: int | None = None, reverse: bool = False, orientation: str = "index",
                 backend: str = "auto", recompute: bool = False):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if value_dim is None:
            if out_channels % heads:
                raise ValueError(f"out_channels ({out_channels}) must be divisible by heads "
                                 f"({heads}) unless value_dim is given")
            value_dim = out_channels // heads
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.mode, self.edge_dim, self.reverse = mode, edge_dim, reverse
        self.orientation, self.backend, self.recompute = orientation, backend, recompute
        self.value_dim = value_dim
        self.key_dim = key_dim or value_dim

        self.lin_q = Linear(in_channels, heads * self.key_dim, bias=False)
        self.lin_k = Linear(in_channels, heads * self.key_dim, bias=False)
        self.lin_v = Linear(in_channels, heads * value_dim, bias=False)
        edge_features = edge_dim or 0
        self.lin_source = Linear(in_channels + edge_features, heads)
        self.lin_mark = Linear(in_channels + edge_features, heads)
        self.lin_direct = Linear(in_channels, heads)
        self.lin_transition = Linear(in_channels + 2 * (edge_dim or in_channels), heads)
        self.norm_weight = Parameter(torch.empty(heads, value_dim))
        self.lin_out = Linear(heads * value_dim, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self):
        for lin in (self.lin_q, self.lin_k, self.lin_v, self.lin_out):
            torch.nn.init.normal_(lin.weight, std=0.02)
        for lin in (self.lin_source, self.lin_mark, self.lin_direct):
            torch.nn.init.zeros_(lin.weight)
            torch.nn.init.constant_(lin.bias, GATE_BIAS)
        self.lin_transition.reset_parameters()
        torch.nn.init.ones_(self.norm_weight)

    def line_graph(self, x: Tensor, edge_index) -> LineGraph:
        if isinstance(edge_index, LineGraph):
            if edge_index.mode != self.mode:
                raise ValueError(f"edge_index is a {edge_index.mode}-mode LineGraph but this "
                                 f"layer has mode={self.mode!r}")
            if edge_index.num_nodes != x.size(0):
                raise ValueError(f"edge_index has {edge_index.num_nodes} nodes but x has "
                                 f"{x.size(0)} rows")
            return edge_index
        return prepare_dag(edge_index, x.size(0), mode=self.mode, orientation=self.orientation,
                           reverse=self.reverse)

    def gates(self, x: Tensor, graph: LineGraph, edge_attr: Tensor | None):
        """Source and Mark ``[E, H]``, Transition ``[L, H]``, Direct ``[N, H]``."""
        src, dst = graph.edge_index
        e_in, e_out = graph.line_index
        if self.edge_dim is None:
            source_in, mark_in = x[src], x[dst]
            far = (x[src[e_in]], x[dst[e_out]])
        else:
            if edge_attr is None:
                raise ValueError(f"edge_attr is required: this layer has edge_dim={self.edge_dim}")
            if edge_attr.dim() == 1:
                edge_attr = edge_attr.unsqueeze(-1)
            edge_attr = edge_attr[graph.edge_id]
            source_in = torch.cat([x[src], edge_attr], dim=-1)
            mark_in = torch.cat([x[dst], edge_attr], dim=-1)
            far = (edge_attr[e_in], edge_attr[e_out])
        transition = self.lin_transition(torch.cat([x[dst[e_in]], *far], dim=-1))
        if self.mode == "P":
            transition = p_mode_transition(transition, graph)
        else:
            transition = torch.tanh(transition)
        return (torch.sigmoid(self.lin_source(source_in)), transition,
                torch.sigmoid(self.lin_mark(mark_in)), torch.sigmoid(self.lin_direct(x)))

    def forward(self, x: Tensor, edge_index, edge_attr: Tensor | None = None) -> Tensor:
        graph = self.line_graph(x, edge_index)
        shape = (x.size(0), self.heads, -1)
        q = self.lin_q(x).view(shape) / math.sqrt(self.key_dim)
        k, v = self.lin_k(x).view(shape), self.lin_v(x).view(shape)
        source, transition, mark, direct = self.gates(x, graph, edge_attr)
        h = plstm(q, k, v, source, transition, mark, direct, graph,
                  backend=self.backend, recompute=self.recompute)
        h = F.rms_norm(h, (self.value_dim,), eps=1e-5) * self.norm_weight
        return self.lin_out(h.reshape(x.size(0), -1))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads}, mode={self.mode!r}, edge_dim={self.edge_dim}"
                f"{', reverse=True' if self.reverse else ''})")
