"""The pLSTM graph layer."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, Parameter

from ..graph.line_graph import MODES, LineGraph
from ..graph.prepare import prepare_dag
from ..graph.validation import check_one_of, check_positive_int, check_shape
from ..ops.plstm import BACKENDS, plstm
from ..ops.plstm.gates import (P_MODE_GROUPS, TRANSITION_SCALE, p_mode_transition,
                               transition_bias, transition_gate)
from ..ops.rms_norm import rms_norm

#: Initial gate biases. Direct starts at sigmoid(-5) ~ 0.007 as in the paper; Source and Mark
#: start at sigmoid(0) = 0.5: with the paper's -5 a node receives what crosses an edge at
#: sigmoid(-5)^2 ~ 4.5e-5 of its input, 150x below its own Direct term, and a look-up across a
#: DAG does not train (README, long-range propagation). ``GATE_BIAS`` is the paper's value for all three.
GATE_BIAS = -5.0
INITIAL_BIAS = {"source": 0.0, "mark": 0.0, "direct": GATE_BIAS, "transition": 1.0}

#: Node-side terms of the gates, in the order :attr:`PLSTMConv.lin_gate` computes them: the
#: Source term of an edge's tail, the Mark term of its head, Direct, and the Transition term of
#: the node a line edge passes through (without edge features also those of the far ends).
GATE_TERMS = ("source", "mark", "direct", "transition", "transition_in", "transition_out")

#: Initialisations of :class:`PLSTMConv` (its ``gates`` and ``projections`` arguments).
INITS = ("default", "official")

#: What ``gates="local"`` keeps of a cell per DAG step at initialisation: a signal halves per
#: step (horizon 2), so the layer starts close to its neighbours, as a message-passing layer
#: does, and learns from there how far to reach.
LOCAL_RETENTION = 0.5


def multiscale_retention(heads: int, shortest: float = 0.5, longest: float = 0.99) -> Tensor:
    r"""Per-head fraction :math:`\gamma_h` of a cell that one DAG step keeps at initialisation,
    from ``shortest`` to ``longest`` with :math:`1 - \gamma_h` geometric over the heads (horizons
    :math:`1 / (1 - \gamma)` of 2 to 100 steps by default), as RetNet spreads its decays: some
    heads see a node's near neighbourhood, one still carries a signal across a deep DAG. One head
    gets ``longest``."""
    if heads == 1:
        return torch.tensor([longest])
    return 1 - torch.logspace(math.log10(1 - shortest), math.log10(1 - longest), heads)


def local_retention(heads: int) -> Tensor:
    """:data:`LOCAL_RETENTION` for every head."""
    return torch.full((heads,), LOCAL_RETENTION)


#: Gate initialisations that are the defaults with a per-head Transition bias, by name: the
#: fraction of a cell each head keeps per DAG step at initialisation, ``retention(heads)``.
RETENTION_INITS = {"multiscale": multiscale_retention, "local": local_retention}

#: Gate initialisations: :data:`INITS` and :data:`RETENTION_INITS`.
GATE_INITS = INITS + tuple(RETENTION_INITS)


def reset_projections(linears, init: str) -> None:
    r"""q / k / v / output projections initialised as ``init`` says: ``"official"`` the
    official code's small init :math:`\mathcal N(0, 2 / (5\, \text{fan\_in}))`, else normal
    with std 0.02; biases (where there are) 0."""
    for lin in linears:
        std = math.sqrt(2 / (5 * lin.in_features)) if init == "official" else 0.02
        torch.nn.init.normal_(lin.weight, std=std)
        if lin.bias is not None:
            torch.nn.init.zeros_(lin.bias)


class PLSTMConv(torch.nn.Module):
    r"""The pLSTM layer of Pöppel et al. (arXiv 2506.11997) on the line graph of a DAG.

    For every head, with :math:`q_n = W_q x_n / \sqrt{K}` (``projections="official"``: no
    :math:`\sqrt{K}`), :math:`k_n = W_k x_n`,
    :math:`v_n = W_v x_n`, and for a DAG edge :math:`e = (a \to n)`, a line edge
    :math:`e' = (a' \to n) \to e = (n \to b)`:

    .. math::
        S_e &= \sigma(W_S [x_a \,\|\, f_e]), \quad M_e = \sigma(W_M [x_n \,\|\, f_e]),
        \quad D_n = \sigma(W_D x_n) \\
        \tilde T_{e' \to e} &= s\, W_T [x_n \,\|\, f_{e'} \,\|\, f_e]
        \quad (\text{without edge features: } [x_n \,\|\, x_{a'} \,\|\, x_b]) \\
        T &= \tilde T / (0.5 + \textstyle\sum_{e' \to e''} |\tilde T_{e' \to e''}|)
        \ \text{(P-mode)}, \qquad T = \tanh \tilde T \ \text{(D-mode, pruned multitree)} \\
        C_e &= S_e\, k_a v_a^\top + \textstyle\sum_{e' \to e} T_{e' \to e}\, C_{e'}, \qquad
        h_n = \textstyle\sum_{e \to n} M_e\, C_e^\top q_n + D_n (q_n \cdot k_n)\, v_n \\
        y_n &= W_O\, \big\|_h\, \mathrm{RMSNorm}_h(h_n)

    P-mode's normalisation keeps every line node's outgoing transitions below 1 in absolute
    sum (paper Eq. 9), so propagation over long paths neither explodes nor needs pruning.
    Gate weights start at 0; Source and Mark at :math:`\sigma(0)`, Direct at :math:`\sigma(-5)`
    (see :data:`INITIAL_BIAS`). The Transition bias starts at 1, and the scale :math:`s`
    (:data:`~plstm_graph.ops.plstm.gates.TRANSITION_SCALE`: 50 in P-mode, 5 in D-mode) puts
    every step near its bound, so at initialisation a signal keeps about half its size over 64
    DAG steps in P-mode and nearly all of it in D-mode (the official code saturates its
    transitions the same way: bias :math:`\sim \mathcal N(0, 10^2)` on graphs,
    :math:`\tanh(5 (1 + W x))` on images).

    All gate terms that depend on a node are computed by one projection of :math:`x`
    (:attr:`lin_gate`) and those that depend on an edge by one projection of the edge
    features (:attr:`lin_edge_gate`), then gathered onto edges and line edges.

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
        transition_scale: the factor :math:`s` (default: the mode's entry of ``TRANSITION_SCALE``;
            1 with a bias of :math:`\mathcal N(0, 10^2)` is the official graph code).
        gates: ``"default"`` (the initialisation above), ``"multiscale"`` (the same, but the
            Transition bias differs per head: head :math:`h` keeps :math:`\gamma_h` of
            :func:`multiscale_retention` per step, from 0.5 to 0.99), ``"local"`` (every head
            keeps :data:`LOCAL_RETENTION` = 0.5 per step: a local start) or ``"official"`` (the
            official graph code's, ml-jku/plstm ``pLSTMGraphEdgeLayer``, SPEC section 6:
            :meth:`reset_official_gates`).
        projections: ``"default"`` (:math:`W_q, W_k, W_v, W_O` without biases, weights normal
            with std 0.02, :math:`q` divided by :math:`\sqrt{K}`) or ``"official"`` (the
            official graph code's: with biases, weights
            :math:`\mathcal N(0, 2 / (5\, \text{fan\_in}))` ("small init"), biases 0, no
            :math:`\sqrt{K}`).
        p_mode_over: the line edges P-mode's normalisation sums over: ``"successors"`` (those
            leaving a line node, paper Eq. 9 above) or ``"predecessors"`` (those entering it,
            :math:`\sum_{e' \to e} |T_{e' \to e}| < 1`: the official graph code's; see
            :mod:`~plstm_graph.ops.plstm.gates`). D-mode ignores it.

    Shapes:
        - **input:** node features :math:`(N, F_{in})`; ``edge_index`` :math:`(2, E_{in})` or a
          :class:`~plstm_graph.LineGraph` (used as given: its direction and mode must be what
          the layer wants); edge features :math:`(E_{in}, D_e)` in input column order, optional.
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 4, mode: str = "P",
                 edge_dim: int | None = None, key_dim: int | None = None,
                 value_dim: int | None = None, reverse: bool = False, orientation: str = "index",
                 backend: str = "auto", recompute: bool = False,
                 transition_scale: float | None = None, gates: str = "default",
                 projections: str = "default", p_mode_over: str = "successors"):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        check_positive_int(heads, "heads")
        check_one_of(mode, "mode", MODES)
        check_one_of(backend, "backend", BACKENDS)
        check_one_of(gates, "gates", GATE_INITS)
        check_one_of(projections, "projections", INITS)
        check_one_of(p_mode_over, "p_mode_over", P_MODE_GROUPS)
        if edge_dim is not None:
            check_positive_int(edge_dim, "edge_dim")
        if value_dim is None:
            if out_channels % heads:
                raise ValueError(f"out_channels ({out_channels}) must be divisible by heads "
                                 f"({heads}) unless value_dim is given")
            value_dim = out_channels // heads
        check_positive_int(value_dim, "value_dim")
        key_dim = value_dim if key_dim is None else check_positive_int(key_dim, "key_dim")
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.mode, self.edge_dim, self.reverse = mode, edge_dim, reverse
        self.orientation, self.backend, self.recompute = orientation, backend, recompute
        self.key_dim, self.value_dim = key_dim, value_dim
        self.gate_init, self.projection_init = gates, projections
        self.p_mode_over = p_mode_over
        self.transition_scale = TRANSITION_SCALE[mode] if transition_scale is None else transition_scale
        # q is divided by this (sqrt(K) as in attention; the official graph layers do not scale).
        self.query_divisor = 1.0 if projections == "official" else math.sqrt(key_dim)

        bias = projections == "official"
        self.lin_query = Linear(in_channels, heads * key_dim, bias=bias)
        self.lin_key = Linear(in_channels, heads * key_dim, bias=bias)
        self.lin_value = Linear(in_channels, heads * value_dim, bias=bias)
        # Without edge features the Transition also reads the far ends' node features.
        self.num_gate_terms = len(GATE_TERMS) if edge_dim is None else 4
        self.lin_gate = Linear(in_channels, self.num_gate_terms * heads)
        # Edge terms: Source, Mark, and Transition of the incoming and the outgoing edge.
        self.lin_edge_gate = None if edge_dim is None else Linear(edge_dim, 4 * heads, bias=False)
        self.norm_weight = Parameter(torch.empty(heads, value_dim))
        self.lin_out = Linear(heads * value_dim, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self):
        reset_projections((self.lin_query, self.lin_key, self.lin_value, self.lin_out),
                          self.projection_init)
        # Gates start input-independent (weights 0, as in the official code), Transitions at 1
        # before the scale, i.e. near their bound.
        torch.nn.init.zeros_(self.lin_gate.weight)
        with torch.no_grad():
            for term, rows in zip(GATE_TERMS, self.lin_gate.bias.view(-1, self.heads)):
                rows.fill_(INITIAL_BIAS.get(term, 0.0))
        if self.lin_edge_gate is not None:
            torch.nn.init.zeros_(self.lin_edge_gate.weight)
        torch.nn.init.ones_(self.norm_weight)
        if self.gate_init == "official":
            self.reset_official_gates()
        elif self.gate_init in RETENTION_INITS:
            retention = RETENTION_INITS[self.gate_init](self.heads)
            with torch.no_grad():
                self.lin_gate.bias.view(-1, self.heads)[GATE_TERMS.index("transition")].copy_(
                    transition_bias(retention, self.mode, self.transition_scale))

    def reset_official_gates(self, generator: torch.Generator | None = None):
        r"""The official graph code's gates (ml-jku/plstm ``pLSTMGraphEdgeLayer``, SPEC section 6):
        all gate weights 0, Source, Mark and Direct bias -5, Transition bias drawn per head from
        :math:`\mathcal N(0, 10^2)` and not scaled (``transition_scale = 1``)."""
        self.transition_scale = 1.0
        torch.nn.init.zeros_(self.lin_gate.weight)
        if self.lin_edge_gate is not None:
            torch.nn.init.zeros_(self.lin_edge_gate.weight)
        with torch.no_grad():
            for term, rows in zip(GATE_TERMS, self.lin_gate.bias.view(-1, self.heads)):
                if term == "transition":
                    rows.copy_(torch.randn(self.heads, generator=generator) * 10.0)
                else:
                    rows.fill_(0.0 if term.startswith("transition") else GATE_BIAS)

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

    def check_edge_attr(self, edge_attr: Tensor | None, edge_index, graph: LineGraph):
        """``edge_attr`` as ``[E_in, edge_dim]``, or ``None`` without edge features."""
        if self.edge_dim is None:
            return None
        if edge_attr is None:
            raise ValueError(f"edge_attr is required: this layer has edge_dim={self.edge_dim}")
        if isinstance(edge_attr, Tensor) and edge_attr.dim() == 1:
            edge_attr = edge_attr.unsqueeze(-1)
        check_shape(edge_attr, "edge_attr", (None, self.edge_dim))
        rows = edge_attr.size(0)
        if isinstance(edge_index, Tensor):
            if rows != edge_index.size(1):
                raise ValueError(f"edge_attr has {rows} rows but edge_index has "
                                 f"{edge_index.size(1)} columns")
        elif graph.num_edges and rows <= int(graph.edge_id.max()):
            # A LineGraph does not record how many input columns it was built from.
            raise ValueError(f"edge_attr has {rows} rows but the LineGraph refers to input "
                             f"edge {int(graph.edge_id.max())}")
        return edge_attr

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``q, k, v`` ``[N, H, *]`` and the node-side gate terms ``[N, terms * H]`` from one
        matrix product (the weights stay separate modules, as in PyG's ``TransformerConv``)."""
        lins = (self.lin_query, self.lin_key, self.lin_value, self.lin_gate)
        # q's divisor is applied to W_q (a [H K, F] matrix), not to q ([N, H K]).
        q_weight, q_bias = self.lin_query.weight, self.lin_query.bias
        if self.query_divisor != 1.0:
            q_weight = q_weight / self.query_divisor
            q_bias = None if q_bias is None else q_bias / self.query_divisor
        weight = torch.cat([q_weight] + [lin.weight for lin in lins[1:]])
        if q_bias is None:
            bias = F.pad(self.lin_gate.bias, (weight.size(0) - self.lin_gate.bias.numel(), 0))
        else:
            bias = torch.cat([q_bias] + [lin.bias for lin in lins[1:]])
        q, k, v, terms = F.linear(x, weight, bias).split([lin.out_features for lin in lins], -1)
        n, heads = x.size(0), self.heads
        return (q.view(n, heads, self.key_dim), k.view(n, heads, self.key_dim),
                v.view(n, heads, self.value_dim), terms)

    def gates(self, x: Tensor, graph: LineGraph, edge_attr: Tensor | None = None):
        """Source and Mark ``[E, H]``, Transition ``[L, H]``, Direct ``[N, H]``."""
        edge_attr = self.check_edge_attr(edge_attr, graph, graph)
        return self._gates(self.lin_gate(x), graph, edge_attr)

    def _gates(self, terms: Tensor, graph: LineGraph, edge_attr: Tensor | None):
        """:meth:`gates` from the node-side terms ``lin_gate(x)`` and checked edge features."""
        src, dst = graph.edge_index
        e_in, e_out = graph.line_index
        # index_select, not advanced indexing: its backward is one index_add_ instead of a
        # sorting index_put_ (the gathers run on every edge and line edge of every layer).
        through, far_in, far_out = graph.cached("gate_rows", _line_edge_nodes)
        terms = terms.split(self.heads, dim=-1)
        source, mark = terms[0].index_select(0, src), terms[1].index_select(0, dst)
        direct = terms[2]
        transition = terms[3].index_select(0, through)
        if edge_attr is None:
            transition = (transition + terms[4].index_select(0, far_in)
                          + terms[5].index_select(0, far_out))
        else:
            edge_terms = self.lin_edge_gate(edge_attr).index_select(0, graph.edge_id)
            edge_terms = edge_terms.split(self.heads, dim=-1)
            source, mark = source + edge_terms[0], mark + edge_terms[1]
            transition = (transition + edge_terms[2].index_select(0, e_in)
                          + edge_terms[3].index_select(0, e_out))
        transition = transition_gate(self.transition_scale * transition, graph, self.p_mode_over)
        return source.sigmoid(), transition, mark.sigmoid(), direct.sigmoid()

    def forward(self, x: Tensor, edge_index, edge_attr: Tensor | None = None) -> Tensor:
        check_shape(x, "x", (None, self.in_channels))
        graph = self.line_graph(x, edge_index)
        edge_attr = self.check_edge_attr(edge_attr, edge_index, graph)
        q, k, v, terms = self.project(x)
        source, transition, mark, direct = self._gates(terms, graph, edge_attr)
        h = plstm(q, k, v, source, transition, mark, direct, graph,
                  backend=self.backend, recompute=self.recompute)
        h = rms_norm(h, self.norm_weight, eps=1e-5)
        return self.lin_out(h.flatten(1))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads}, mode={self.mode!r}, edge_dim={self.edge_dim}"
                f"{', reverse=True' if self.reverse else ''}"
                f"{', gates=' + repr(self.gate_init) if self.gate_init != 'default' else ''}"
                f"{', projections=' + repr(self.projection_init) if self.projection_init != 'default' else ''}"
                f"{', p_mode_over=' + repr(self.p_mode_over) if self.p_mode_over != 'successors' else ''})")


def _line_edge_nodes(graph: LineGraph) -> tuple[Tensor, Tensor, Tensor]:
    """Per line edge ``(a' -> n) -> (n -> b)``: the node ``n`` it passes through, ``a'`` and
    ``b`` (computed once per graph, shared by every layer on it)."""
    src, dst = graph.edge_index
    e_in, e_out = graph.line_index
    return dst[e_in], src[e_in], dst[e_out]


__all__ = ["GATE_BIAS", "GATE_INITS", "INITIAL_BIAS", "LOCAL_RETENTION", "PLSTMConv",
           "RETENTION_INITS", "local_retention", "multiscale_retention", "p_mode_transition"]
