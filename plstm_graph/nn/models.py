"""Graph-level models: encoder, a stack of pre-norm residual blocks, pooling and a head."""
import torch
from torch import Tensor
from torch.nn import Linear, ModuleList, RMSNorm
from torch_geometric.nn import GATConv, GCNConv, GINEConv, global_add_pool, global_mean_pool

from ..graph.transform import line_graph_of
from .conv_block import ConvBlock
from .encoders import DegreeEncoding, FeatureEncoder
from .plstm_block import PLSTMBlock, plstm_layer_plan
from .residual_block import mlp

#: The mixing layers a :class:`GraphModel` block can use.
MIXERS = ("plstm", "gin", "gcn", "gat", "attention")
POOLINGS = {"mean": global_mean_pool, "sum": global_add_pool}


def _graph_transformer_block(hidden: int, heads: int) -> torch.nn.Module:
    from .graph_transformer import GraphTransformerBlock  # the attention baseline's module
    return GraphTransformerBlock(hidden, heads=heads)


def _block(mixer: str, hidden: int, heads: int, mode: str, reverse: bool) -> torch.nn.Module:
    if mixer == "plstm":
        return PLSTMBlock(hidden, heads=heads, mode=mode, edge_dim=hidden, reverse=reverse)
    if mixer == "gin":
        return ConvBlock(GINEConv(mlp(hidden, ratio=1), train_eps=True), hidden, uses_edge_attr=True)
    if mixer == "gcn":
        return ConvBlock(GCNConv(hidden, hidden), hidden)  # GCN takes no edge features
    if mixer == "gat":
        return ConvBlock(GATConv(hidden, hidden // heads, heads=heads, edge_dim=hidden), hidden,
                         uses_edge_attr=True)
    return _graph_transformer_block(hidden, heads)


class GraphModel(torch.nn.Module):
    r"""A graph-level predictor made of

    1. an input encoder (OGB ``AtomEncoder`` / ``BondEncoder`` or linear layers) plus a
       sinusoidal encoding of each node's neighbour count;
    2. edge features: the encoded input edge features, or :math:`(x_u + x_v) / 2` of the encoded
       node features when the dataset has none (SPEC section 6);
    3. ``layers`` pre-norm residual blocks ``x + mix(RMSNorm(x))``, ``x + MLP(RMSNorm(x))`` whose
       mixing layer is one of :data:`MIXERS`: ``"plstm"`` follows the paper's arrangement
       (:func:`~plstm_graph.nn.plstm_layer_plan`: P-mode then D-mode layers, alternating the DAG
       and its reverse), ``"gin"`` / ``"gcn"`` / ``"gat"`` use torch_geometric's
       ``GINEConv`` / ``GCNConv`` / ``GATConv``, ``"attention"`` the einsum-cascade
       :class:`~plstm_graph.nn.GraphTransformerBlock`;
    4. a final RMSNorm, mean or sum pooling per graph, and a linear head. Regression outputs are
       rescaled by ``target_std`` and shifted by ``target_mean`` (see :meth:`set_target_scale`),
       so predictions are in the units of the targets.

    For ``"plstm"``, each line graph the plan needs is taken once per batch with
    :func:`~plstm_graph.line_graph_of` (precomputed when the data went through
    :class:`~plstm_graph.PrepareDAG`) and shared by every layer that uses it.

    Args:
        mixer: one of :data:`MIXERS`.
        out_channels: outputs per graph (tasks, or classes).
        features: ``"ogb"`` (integer atom / bond features) or ``"onehot"`` (float features).
        node_channels: input node feature size (``"onehot"`` only).
        edge_channels: input edge feature size (``"onehot"``; 0 when there are none). For
            ``"ogb"`` any positive value means the batch carries OGB bond features.
        hidden: feature size of every block.
        layers: number of blocks.
        heads: attention / pLSTM heads (``hidden`` must be divisible by it).
        pooling: ``"mean"`` or ``"sum"``.

    Shapes:
        - **input:** a PyG ``Batch`` (or ``Data``) with ``x``, ``edge_index``, optional
          ``edge_attr`` and ``batch``
        - **output:** :math:`(B, \text{out\_channels})`
    """

    def __init__(self, mixer: str, out_channels: int, features: str = "onehot",
                 node_channels: int | None = None, edge_channels: int = 0, hidden: int = 64,
                 layers: int = 4, heads: int = 4, pooling: str = "mean"):
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {mixer!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {tuple(POOLINGS)}, got {pooling!r}")
        for name, value in (("out_channels", out_channels), ("hidden", hidden),
                            ("layers", layers), ("heads", heads)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if hidden % heads or (hidden // heads) % 2:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads}) with an even "
                             f"size per head")
        self.mixer, self.out_channels, self.features = mixer, out_channels, features
        self.hidden, self.num_layers, self.heads, self.pooling = hidden, layers, heads, pooling

        self.node_encoder = FeatureEncoder(hidden, features, node_channels, kind="node")
        self.edge_encoder = (FeatureEncoder(hidden, features, edge_channels, kind="edge")
                             if edge_channels else None)
        self.degree_encoding = DegreeEncoding(hidden)
        self.plan = plstm_layer_plan(layers) if mixer == "plstm" else [("P", False)] * layers
        self.blocks = ModuleList(_block(mixer, hidden, heads, mode, reverse)
                                 for mode, reverse in self.plan)
        self.norm = RMSNorm(hidden, eps=1e-5)
        self.head = Linear(hidden, out_channels)
        self.register_buffer("target_mean", torch.zeros(out_channels))
        self.register_buffer("target_std", torch.ones(out_channels))

    def reset_parameters(self):
        for module in (self.node_encoder, self.edge_encoder, *self.blocks, self.norm, self.head):
            if module is not None:
                module.reset_parameters()

    def set_target_scale(self, mean: Tensor, std: Tensor):
        """Outputs become ``head(...) * std + mean`` (regression targets of any scale)."""
        self.target_mean.copy_(torch.as_tensor(mean, dtype=torch.float).view(-1))
        self.target_std.copy_(torch.as_tensor(std, dtype=torch.float).view(-1))

    def encode(self, data) -> tuple[Tensor, Tensor]:
        """Encoded node features ``[N, hidden]`` and edge features ``[E, hidden]`` (input edge
        order)."""
        x = self.node_encoder(data.x) + self.degree_encoding(data.edge_index, data.num_nodes)
        if self.edge_encoder is not None:
            if getattr(data, "edge_attr", None) is None:
                raise ValueError("data.edge_attr is required: the model was built with "
                                 "edge_channels > 0")
            return x, self.edge_encoder(data.edge_attr)
        src, dst = data.edge_index
        return x, (x[src] + x[dst]) / 2

    def forward(self, data) -> Tensor:
        x, edge_attr = self.encode(data)
        batch = data.batch if getattr(data, "batch", None) is not None else \
            x.new_zeros(x.size(0), dtype=torch.long)
        line_graphs = {}
        for block, (mode, reverse) in zip(self.blocks, self.plan):
            if self.mixer == "plstm":
                if (mode, reverse) not in line_graphs:
                    line_graphs[mode, reverse] = line_graph_of(data, mode, reverse)
                x = block(x, line_graphs[mode, reverse], edge_attr)
            elif self.mixer == "attention":
                x = block(x, batch)
            else:
                x = block(x, data.edge_index, edge_attr)
        pooled = POOLINGS[self.pooling](self.norm(x), batch, size=getattr(data, "num_graphs", None))
        return self.head(pooled) * self.target_std + self.target_mean

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.mixer!r}, out_channels={self.out_channels}, "
                f"hidden={self.hidden}, layers={self.num_layers}, heads={self.heads}, "
                f"pooling={self.pooling!r})")


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
