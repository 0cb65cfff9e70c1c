"""The built-in models of the registry: pLSTM and the baselines it is compared with.

Each is one :class:`~plstm_graph.nn.registry.ModelSpec`; every block is the same pre-norm
residual block (``x + mix(RMSNorm x)``, ``x + MLP(RMSNorm x)``), so only the mixing layer
differs between the models compared. GIN, GCN and GAT also come as the plain stacks of the
pLSTM paper's baselines (``block="plain"``).
"""
from typing import ClassVar

import torch
from torch_geometric.nn import GATConv, GCNConv, GINEConv

from .conv_block import ConvBlock
from .graph_transformer import GraphTransformerBlock
from .plain_block import PlainConvBlock, classic_gin
from .plstm_block import PLSTMBlock, plstm_layer_plan
from .plstm_conv import GATE_INITS, INITS
from ..graph.validation import check_one_of
from ..ops.plstm.gates import P_MODE_GROUPS
from .registry import ModelSpec, register_model
from .residual_block import mlp


def gine(channels: int) -> GINEConv:
    """GINE with a two-layer MLP of width ``channels``: the GIN baseline's layer, and pLSTM's
    local layer (``local="gin"``)."""
    return GINEConv(mlp(channels, ratio=1), train_eps=True)


#: Local layers a pLSTM block can run beside its pLSTM layer (``local``), by name.
LOCAL_LAYERS = {"none": None, "gin": gine}


def local_layer(name: str, channels: int) -> torch.nn.Module | None:
    """The local layer ``name`` of :data:`LOCAL_LAYERS` at width ``channels`` (``None``: none)."""
    build = LOCAL_LAYERS[name]
    return None if build is None else build(channels)


def paired_layer_plan(num_layers: int) -> list[tuple[str, bool]]:
    """``(mode, reverse)`` of each layer as the official graph code stacks them: blocks of a P-mode
    and a D-mode layer, block ``b`` on the DAG when ``b`` is even and on its reverse when odd
    (ml-jku/plstm_experiments ``plstm_graph``; SPEC section 6)."""
    return [("P" if i % 2 == 0 else "D", (i // 2) % 2 == 1) for i in range(num_layers)]


def forward_layer_plan(num_layers: int) -> list[tuple[str, bool]]:
    """``(mode, reverse)`` of each layer when every layer runs along the DAG, P-mode and D-mode
    taking turns: for targets that depend on a node's ancestors only, such as a parse tree's
    phrase labels (each from its own subtree), as a Tree-LSTM reads them."""
    return [("P" if i % 2 == 0 else "D", False) for i in range(num_layers)]


#: How pLSTM layers take turns between the modes and the two directions of the DAG.
ARRANGEMENTS = {"alternate": plstm_layer_plan, "paired": paired_layer_plan,
                "forward": forward_layer_plan}


@register_model
class PLSTM(ModelSpec):
    r"""pLSTM blocks: P-mode and D-mode layers taking turns, and the DAG and its reverse.

    Args:
        arrangement: ``"alternate"`` (:func:`~plstm_graph.nn.plstm_layer_plan`: every layer
            flips the direction), ``"paired"`` (:func:`paired_layer_plan`: the official code's
            P + D blocks, one direction per block) or ``"forward"``
            (:func:`forward_layer_plan`: every layer along the DAG).
        gates: ``"default"`` (this library's initialisation: saturated transitions, Source and
            Mark at 0.5, see :class:`~plstm_graph.PLSTMConv`), ``"multiscale"`` (the same with
            per-head Transition biases: heads keep 0.5 to 0.99 of a cell per step) or
            ``"official"`` (the official graph code's:
            :meth:`~plstm_graph.PLSTMConv.reset_official_gates`).
        projections: ``"default"`` or ``"official"`` (q, k, v and output projections with
            biases and small init, no :math:`1/\sqrt{K}`; see :class:`~plstm_graph.PLSTMConv`).
        p_mode_over: ``"successors"`` (paper Eq. 9) or ``"predecessors"`` (the official graph
            code's): the line edges P-mode's Transition normalisation sums over.
        local: ``"none"``, or ``"gin"``: a GINE layer beside every pLSTM layer, summed with it
            (GraphGPS's block with pLSTM as the global part:
            :class:`~plstm_graph.nn.local_global.LocalGlobalMixer`).
    """

    name = "plstm"
    description = "pLSTM: P-mode and D-mode layers on the DAG and its reverse"
    supports_edge_attr = True
    default_pooling = "mean"  # the pLSTM paper pools pLSTM by mean, baselines by sum

    def __init__(self, arrangement: str = "alternate", gates: str = "default",
                 projections: str = "default", p_mode_over: str = "successors",
                 local: str = "none"):
        check_one_of(arrangement, "arrangement", ARRANGEMENTS)
        check_one_of(gates, "gates", GATE_INITS)
        check_one_of(projections, "projections", INITS)
        check_one_of(p_mode_over, "p_mode_over", P_MODE_GROUPS)
        check_one_of(local, "local", LOCAL_LAYERS)
        self.arrangement, self.gates, self.projections = arrangement, gates, projections
        self.p_mode_over, self.local = p_mode_over, local

    def layer_plan(self, num_layers):
        return ARRANGEMENTS[self.arrangement](num_layers)

    def line_graphs(self, plan):
        return tuple(dict.fromkeys(plan))

    def init_block(self, hidden, heads, layer, edge_dim):
        mode, reverse = layer
        return PLSTMBlock(hidden, heads=heads, mode=mode, edge_dim=edge_dim, reverse=reverse,
                          gates=self.gates, projections=self.projections,
                          p_mode_over=self.p_mode_over,
                          local=local_layer(self.local, hidden))

    def call_block(self, block, x, inputs):
        conv = block.conv
        return block(x, inputs.line_graph(conv.mode, conv.reverse), inputs.edge_attr,
                     local_edge_index=inputs.edge_index)


#: How a baseline stacks its layers: this library's residual block, or the classic papers' plain
#: stack (the pLSTM paper's baselines).
CONV_BLOCKS = ("residual", "plain")


class _Conv(ModelSpec):
    """A torch_geometric message-passing layer in a :class:`~plstm_graph.nn.ConvBlock`
    (``block="residual"``), or stacked plainly, ``ReLU(conv(x))``, as the pLSTM paper's official
    baselines are (``block="plain"``: :class:`~plstm_graph.nn.plain_block.PlainConvBlock`, no
    edge features)."""

    #: a BatchNorm between the layer and the ReLU in the plain stack.
    plain_batch_norm: ClassVar[bool] = False

    def __init__(self, block: str = "residual"):
        check_one_of(block, "block", CONV_BLOCKS)
        self.block = block
        if block == "plain":  # the official baselines read node features only
            self.supports_edge_attr = False

    def init_conv(self, hidden, heads, edge_dim):
        raise NotImplementedError

    def init_block(self, hidden, heads, layer, edge_dim):
        conv = self.init_conv(hidden, heads, edge_dim)
        if self.block == "plain":
            return PlainConvBlock(conv, hidden, batch_norm=self.plain_batch_norm)
        return ConvBlock(conv, hidden, uses_edge_attr=self.supports_edge_attr)

    def call_block(self, block, x, inputs):
        return block(x, inputs.edge_index, inputs.edge_attr)


@register_model
class GIN(_Conv):
    name = "gin"
    description = "GINE (GIN with edge features), Xu et al. 2019 / Hu et al. 2020"
    supports_edge_attr = True
    plain_batch_norm = True

    def init_conv(self, hidden, heads, edge_dim):
        return classic_gin(hidden) if self.block == "plain" else gine(hidden)


@register_model
class GCN(_Conv):
    name = "gcn"
    description = "GCN (Kipf and Welling 2017); no edge features"

    def init_conv(self, hidden, heads, edge_dim):
        return GCNConv(hidden, hidden)


@register_model
class GAT(_Conv):
    name = "gat"
    description = "GAT with edge features (Velickovic et al. 2018)"
    supports_edge_attr = True

    def init_conv(self, hidden, heads, edge_dim):
        return GATConv(hidden, hidden // heads, heads=heads, edge_dim=edge_dim)


@register_model
class Attention(ModelSpec):
    """Graph transformer blocks: softmax attention among each graph's nodes.

    Args:
        local: ``"none"``, or ``"gin"``: a GINE layer beside every attention layer, summed
            with it (GraphGPS, Rampášek et al. 2022; the same block as pLSTM's ``local="gin"``).
    """

    name = "attention"
    description = "graph transformer: softmax attention among each graph's nodes (einsum cascade)"
    default_pooling = "mean"

    def __init__(self, local: str = "none"):
        check_one_of(local, "local", LOCAL_LAYERS)
        self.local = local

    def init_block(self, hidden, heads, layer, edge_dim):
        return GraphTransformerBlock(hidden, heads=heads, local=local_layer(self.local, hidden))

    def call_block(self, block, x, inputs):
        return block.forward_shared(x, inputs)
