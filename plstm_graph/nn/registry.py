"""The model registry: every mixing layer a :class:`~plstm_graph.nn.GraphModel` can stack.

A model is one registered :class:`ModelSpec` subclass: how to build its block for each layer,
how to call it, whether it uses edge features, which precomputed line graphs it needs and how
it pools by default. Everything else (encoders, norms, pooling, head, the trainer, the command
line) is shared, so adding a model touches one class::

    from plstm_graph.nn.registry import ModelSpec, register_model

    @register_model
    class GCN(ModelSpec):
        name = "gcn"
        def init_block(self, hidden, heads, layer, edge_dim):
            return ConvBlock(GCNConv(hidden, hidden), hidden)
        def call_block(self, block, x, inputs):
            return block(x, inputs.edge_index)

This follows PyG's ``BasicGNN`` (``init_conv``, ``supports_edge_attr``).
"""
from typing import ClassVar

import torch
from torch import Tensor

from ..graph.line_graph import LineGraph
from ..graph.transform import PrepareDAG, line_graph_of
from ..graph.validation import check_one_of

_MODELS: dict[str, type["ModelSpec"]] = {}


class BlockInputs:
    """What a block may read besides the node features, for one batch.

    Attributes:
        data: the PyG ``Batch`` (or ``Data``).
        edge_index: ``[2, E_in]`` input edges.
        edge_attr: encoded edge features ``[E_in, hidden]`` in input edge order.
        batch: ``[N]`` graph id of every node.
        num_graphs: graphs in the batch.
        orientation: ``"index"`` (undirected data, oriented lower -> higher index) or ``"given"``.
    """

    def __init__(self, data, edge_attr: Tensor | None, batch: Tensor, orientation: str = "index"):
        self.data, self.edge_attr, self.batch, self.orientation = data, edge_attr, batch, orientation
        self.edge_index = data.edge_index
        self.num_graphs = int(getattr(data, "num_graphs", None) or
                              (int(batch.max()) + 1 if batch.numel() else 1))
        self._cache: dict = {}

    def line_graph(self, mode: str = "P", reverse: bool = False) -> LineGraph:
        """The batch's line graph, precomputed by :class:`~plstm_graph.PrepareDAG` when present,
        else built once per batch and shared by every layer that asks for it."""
        return self.cached(("line_graph", mode, reverse),
                           lambda: line_graph_of(self.data, mode, reverse, self.orientation))

    def cached(self, key, build):
        """``build()`` once per batch and ``key``, shared by every block (a model's own per-batch
        structure, e.g. the DAG-LSTM's node schedules)."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


class ModelSpec:
    """How :class:`~plstm_graph.nn.GraphModel` builds and calls one kind of block.

    Subclass, set :attr:`name` and implement :meth:`init_block` and :meth:`call_block`; then
    decorate with :func:`register_model`. A spec's ``__init__`` may take keyword options (a
    run's ``model_options``). Optional hooks add model-specific inputs
    (:meth:`init_extra` / :meth:`encode`, e.g. position embeddings) or pooling (:meth:`pool`).
    """

    #: the ``--model`` name.
    name: ClassVar[str]
    #: one line for ``--help`` and ``plstm-graph models``.
    description: ClassVar[str] = ""
    #: blocks receive encoded edge features (``inputs.edge_attr``).
    supports_edge_attr: ClassVar[bool] = False
    #: ``"mean"`` or ``"sum"`` when the run does not choose.
    default_pooling: ClassVar[str] = "sum"

    def layer_plan(self, num_layers: int) -> list:
        """One entry per block, handed to :meth:`init_block` (default: nothing per layer)."""
        return [None] * num_layers

    def line_graphs(self, plan: list) -> tuple[tuple[str, bool], ...]:
        """The ``(mode, reverse)`` line graphs the blocks of ``plan`` read (precomputed once per
        graph by :meth:`transform`)."""
        return ()

    def init_block(self, hidden: int, heads: int, layer, edge_dim: int | None) -> torch.nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must implement init_block")

    def call_block(self, block: torch.nn.Module, x: Tensor, inputs: BlockInputs) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement call_block")

    def init_extra(self, hidden: int) -> torch.nn.Module | None:
        """A module of the model's own, passed to :meth:`encode` (default: none)."""
        return None

    def encode(self, extra: torch.nn.Module | None, x: Tensor, inputs: BlockInputs) -> Tensor:
        """Node features after the input encoder, before the first block (default: as is)."""
        return x

    def pool(self, x: Tensor, inputs: BlockInputs) -> Tensor | None:
        """Graph features ``[B, hidden]``, or ``None`` for the run's pooling (default)."""
        return None

    def transform(self, num_layers: int, orientation: str = "index") -> PrepareDAG | None:
        """The :class:`~plstm_graph.PrepareDAG` that stores exactly the line graphs this model's
        plan reads, or ``None`` when it reads none."""
        needed = self.line_graphs(self.layer_plan(num_layers))
        return PrepareDAG(line_graphs=needed, orientation=orientation) if needed else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def register_model(cls: type[ModelSpec]) -> type[ModelSpec]:
    """Class decorator: makes ``cls.name`` a model of every :class:`GraphModel`, the trainer and
    the command line. Re-registering a name replaces it (e.g. on module reload)."""
    if not (isinstance(cls, type) and issubclass(cls, ModelSpec)):
        raise TypeError(f"register_model expects a ModelSpec subclass, got {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__}.name must be a non-empty string, got {name!r}")
    _MODELS[name] = cls
    return cls


def unregister_model(name: str) -> None:
    """Removes a registered model (tests that register throw-away models)."""
    _MODELS.pop(name, None)


def model_names() -> list[str]:
    """Registered model names, in registration order."""
    return list(_MODELS)


def get_model(name: str, **options) -> ModelSpec:
    """A fresh :class:`ModelSpec` of the registered model ``name``, built with ``options`` (the
    keyword arguments its ``__init__`` takes, e.g. pLSTM's ``arrangement``)."""
    check_one_of(name, "model", _MODELS)
    try:
        return _MODELS[name](**options)
    except TypeError as error:
        raise ValueError(f"model_options {options!r} do not fit model {name!r}: {error}") from None
