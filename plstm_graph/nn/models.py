"""Graph- and node-level models: encoder, a stack of registered blocks, pooling and a head."""
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Identity, Linear, ModuleList, ReLU, RMSNorm, Sequential
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from ..graph.orientation import ORIENTATIONS
from ..graph.validation import check_one_of, check_positive_int, check_probability
from . import mixers  # noqa: F401  (registers pLSTM and the baselines first, as listed)
from . import dag_lstm, plstm_2d, vit  # noqa: F401,I001  (register the other models)
from .encoders import DegreeEncoding, FeatureEncoder
from .registry import BlockInputs, get_model, model_names

POOLINGS = {"mean": global_mean_pool, "sum": global_add_pool, "max": global_max_pool}
#: One output row per graph or per node (a dataset's ``task_level``).
TASK_LEVELS = ("graph", "node")
#: GraphModel's own options, which ``model_options`` may carry beside the mixer's.
MODEL_OPTIONS = {"head": ("linear", "mlp", "per-layer"), "edge_features": ("encoded", "ends"),
                 "degree": ("sinusoidal", "none")}


def split_model_options(options: dict | None) -> tuple[dict, dict]:
    """``model_options`` as (GraphModel's own, :data:`MODEL_OPTIONS`, checked; the mixer
    spec's, which the spec checks when it is built)."""
    options = options or {}
    own = {key: value for key, value in options.items() if key in MODEL_OPTIONS}
    for name, value in own.items():
        check_one_of(value, name, MODEL_OPTIONS[name])
    return own, {key: value for key, value in options.items() if key not in MODEL_OPTIONS}


class GraphModel(torch.nn.Module):
    r"""A graph- or node-level predictor made of

    1. an input encoder (OGB ``AtomEncoder`` / ``BondEncoder``, linear layers for float features,
       or a token embedding) plus a sinusoidal encoding of each node's neighbour count
       (``degree="none"``: without it, as the pLSTM paper's baselines);
    2. edge features: the encoded input edge features, or :math:`(x_u + x_v) / 2` of the encoded
       node features when the dataset has none or ``edge_features="ends"`` (SPEC section 6);
    3. ``layers`` blocks of the registered model ``model`` (see
       :mod:`~plstm_graph.nn.registry`; :func:`~plstm_graph.nn.registry.model_names` lists them),
       each ``x + mix(RMSNorm(x))``, ``x + MLP(RMSNorm(x))``;
    4. a final RMSNorm and, for graph-level tasks, mean or sum pooling per graph; a linear head,
       initialised to zero so that training starts from the mean prediction (``head="mlp"``:
       no final norm, and Linear -> ReLU -> Linear with PyTorch's default initialisation, the
       official pLSTM graph code's head). ``head="per-layer"``: no final norm, and one linear
       layer per block output and for the encoded input, each applied to its own pooled
       features, summed: GIN's read-out (Xu et al. 2019), as the pLSTM paper's GIN reads out.
       Regression outputs are rescaled by ``target_std`` and shifted by ``target_mean`` (see
       :meth:`set_target_scale`), so predictions are in the units of the targets.
    5. with ``dropout > 0``, dropout while training on the encoded node features (before the
       first block) and on the head's input: the embedding and classifier dropout of Tai et
       al.'s Tree-LSTM (no dataset's default uses it: it did not help on SST, README round 13).

    The line graphs a model reads are taken once per batch (precomputed when the data went
    through the :class:`~plstm_graph.PrepareDAG` of :meth:`transform`) and shared by its layers.

    Args:
        model: a registered model name (``"plstm"``, ``"gin"``, ...).
        out_channels: outputs per graph or node (tasks, or classes).
        features: ``"ogb"`` (integer atom / bond features), ``"onehot"`` (float features) or
            ``"tokens"`` (``x`` holds one integer token id per node).
        node_channels: input node feature size (``"onehot"``), or vocabulary size (``"tokens"``).
        edge_channels: input edge feature size (``"onehot"``; 0 when there are none). For
            ``"ogb"`` any positive value means the batch carries OGB bond features.
        hidden: feature size of every block.
        layers: number of blocks.
        heads: attention / pLSTM heads (``hidden`` must be divisible by it).
        pooling: ``"mean"``, ``"sum"`` or ``"max"`` (default: the model's own).
        task_level: ``"graph"`` (one output row per graph) or ``"node"`` (one per node).
        orientation: ``"index"`` (undirected data oriented lower -> higher index) or ``"given"``.
        model_options: keyword options of the model's spec (e.g. ``{"arrangement": "paired"}``
            for pLSTM); it may also carry ``head``, ``edge_features`` and ``degree``.
        head: ``"linear"``, ``"mlp"`` or ``"per-layer"`` (see 4.).
        edge_features: ``"encoded"`` (the dataset's edge features, when it has any) or
            ``"ends"`` (:math:`(x_u + x_v) / 2` always: the official pLSTM graph code leaves bond
            labels unused).
        degree: ``"sinusoidal"`` (see 1.) or ``"none"``.
        dropout: probability of zeroing a feature of the encoded nodes and of the head's input
            while training (see 5.; default 0).

    Shapes:
        - **input:** a PyG ``Batch`` (or ``Data``) with ``x``, ``edge_index``, optional
          ``edge_attr`` and ``batch``
        - **output:** :math:`(B, \text{out\_channels})`, or :math:`(N, \text{out\_channels})`
          for node-level tasks
    """

    def __init__(self, model: str, out_channels: int, features: str = "onehot",
                 node_channels: int | None = None, edge_channels: int = 0, hidden: int = 64,
                 layers: int = 4, heads: int = 4, pooling: str | None = None,
                 task_level: str = "graph", orientation: str = "index",
                 model_options: dict | None = None, head: str = "linear",
                 edge_features: str = "encoded", dropout: float = 0.0,
                 degree: str = "sinusoidal"):
        super().__init__()
        own, spec_options = split_model_options(
            {"head": head, "edge_features": edge_features, "degree": degree,
             **(model_options or {})})
        head, edge_features, degree = own["head"], own["edge_features"], own["degree"]
        self.spec = get_model(model, **spec_options)
        pooling = pooling or self.spec.default_pooling
        check_one_of(pooling, "pooling", POOLINGS)
        check_one_of(task_level, "task_level", TASK_LEVELS)
        check_one_of(orientation, "orientation", ORIENTATIONS)
        for name, value in (("out_channels", out_channels), ("hidden", hidden),
                            ("layers", layers), ("heads", heads)):
            check_positive_int(value, name)
        if hidden % heads or (hidden // heads) % 2:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads}) with an even "
                             f"size per head")
        check_probability(dropout, "dropout")
        self.dropout = dropout
        self.model, self.out_channels, self.features = model, out_channels, features
        self.hidden, self.num_layers, self.heads, self.pooling = hidden, layers, heads, pooling
        self.task_level, self.orientation = task_level, orientation

        self.node_encoder = FeatureEncoder(hidden, features, node_channels, kind="node")
        self.edge_encoder = (FeatureEncoder(hidden, features, edge_channels, kind="edge")
                             if edge_channels and edge_features == "encoded" else None)
        self.degree_encoding = DegreeEncoding(hidden) if degree == "sinusoidal" else None
        self.extra = self.spec.init_extra(hidden)
        self.plan = self.spec.layer_plan(layers)
        edge_dim = hidden if self.spec.supports_edge_attr else None
        self.blocks = ModuleList(self.spec.init_block(hidden, heads, layer, edge_dim)
                                 for layer in self.plan)
        self.head_kind = head
        if head == "mlp":
            self.norm = Identity()
            self.head = Sequential(Linear(hidden, hidden), ReLU(), Linear(hidden, out_channels))
        elif head == "per-layer":
            self.norm = Identity()
            self.head = ModuleList(Linear(hidden, out_channels) for _ in range(layers + 1))
        else:
            self.norm = RMSNorm(hidden, eps=1e-5)
            self.head = Linear(hidden, out_channels)
        self.register_buffer("target_mean", torch.zeros(out_channels))
        self.register_buffer("target_std", torch.ones(out_channels))
        self._reset_head()

    def _reset_head(self):
        if self.head_kind != "linear":  # the official code's heads, as PyTorch initialises them
            for layer in self.head:
                if isinstance(layer, Linear):
                    layer.reset_parameters()
            return
        # A zero head starts every prediction at the training mean (uniform class scores): with
        # sum pooling a random head's output grows with graph size and the first epochs are
        # spent undoing it.
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    @property
    def mixer(self) -> str:
        """The model name (the name of the mixing layer before the registry)."""
        return self.model

    def transform(self):
        """The :class:`~plstm_graph.PrepareDAG` computing exactly the line graphs this model
        reads (``None`` when it reads none): apply it to the dataset once."""
        return self.spec.transform(self.num_layers, self.orientation)

    def reset_parameters(self):
        for module in (self.node_encoder, self.edge_encoder, self.extra, *self.blocks, self.norm):
            if module is not None and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self._reset_head()

    def set_target_scale(self, mean: Tensor, std: Tensor):
        """Outputs become ``head(...) * std + mean`` (regression targets of any scale)."""
        self.target_mean.copy_(torch.as_tensor(mean, dtype=torch.float).view(-1))
        self.target_std.copy_(torch.as_tensor(std, dtype=torch.float).view(-1))

    def encode(self, data) -> tuple[Tensor, Tensor]:
        """Encoded node features ``[N, hidden]`` and edge features ``[E, hidden]`` (input edge
        order)."""
        x = self.node_encoder(data.x)
        if self.degree_encoding is not None:
            x = x + self.degree_encoding(data.edge_index, data.num_nodes)
        if self.edge_encoder is not None:
            edge_attr = getattr(data, "edge_attr", None)
            if edge_attr is None:
                raise ValueError("data.edge_attr is required: the model was built with "
                                 "edge_channels > 0")
            if edge_attr.size(0) != data.edge_index.size(1):
                raise ValueError(f"edge_attr has {edge_attr.size(0)} rows but edge_index has "
                                 f"{data.edge_index.size(1)} columns: one row per edge is needed")
            return x, self.edge_encoder(edge_attr)
        src, dst = data.edge_index
        return x, (x[src] + x[dst]) / 2

    def forward(self, data) -> Tensor:
        x, edge_attr = self.encode(data)
        batch = data.batch if getattr(data, "batch", None) is not None else \
            x.new_zeros(x.size(0), dtype=torch.long)
        inputs = BlockInputs(data, edge_attr, batch, self.orientation)
        x = self.spec.encode(self.extra, F.dropout(x, self.dropout, self.training), inputs)
        outputs = [x]
        for block in self.blocks:
            x = self.spec.call_block(block, x, inputs)
            outputs.append(x)
        if self.head_kind == "per-layer":
            out = sum(head(self.read_out(h, inputs)) for head, h in zip(self.head, outputs))
        else:
            out = self.head(self.read_out(x, inputs))
        return out * self.target_std + self.target_mean

    def read_out(self, x: Tensor, inputs: BlockInputs) -> Tensor:
        """What the head reads from node features ``x``: normed, pooled per graph for
        graph-level tasks, and dropped out while training."""
        x = self.norm(x)
        if self.task_level == "graph":
            pooled = self.spec.pool(x, inputs)
            x = pooled if pooled is not None else \
                POOLINGS[self.pooling](x, inputs.batch, size=inputs.num_graphs)
        return F.dropout(x, self.dropout, self.training)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.model!r}, out_channels={self.out_channels}, "
                f"hidden={self.hidden}, layers={self.num_layers}, heads={self.heads}, "
                f"pooling={self.pooling!r}"
                f"{', task_level=' + repr(self.task_level) if self.task_level != 'graph' else ''}"
                f"{', head=' + repr(self.head_kind) if self.head_kind != 'linear' else ''}"
                f"{', degree=' + repr('none') if self.degree_encoding is None else ''}"
                f"{', dropout=' + repr(self.dropout) if self.dropout else ''})")


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
