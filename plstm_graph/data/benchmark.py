"""A benchmark dataset: the PyG dataset plus its task, metric, features and splits."""
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch_geometric.data import Dataset

from plstm_graph.data.metrics import HIGHER_IS_BETTER, compute_metric
from plstm_graph.graph.orientation import ORIENTATIONS
from plstm_graph.graph.validation import check_one_of

TASK_TYPES = ("binary classification", "multiclass classification", "regression")
FEATURES = ("ogb", "onehot", "tokens")
#: Targets per graph or per node.
TASK_LEVELS = ("graph", "node")
#: Node-level metrics scored on every labelled node; the others on the nodes of ``mask``.
ALL_NODE_METRICS = frozenset({"acc_all_nodes"})

Split = Dict[str, torch.Tensor]


def as_split(parts: Dict[str, Union[np.ndarray, Sequence[int], torch.Tensor]]) -> Split:
    """``{"train", "valid", "test"}`` -> LongTensor indices, checking the keys."""
    if set(parts) != {"train", "valid", "test"}:
        raise ValueError(f"split: expected the keys train, valid, test, got {sorted(parts)}")
    return {key: torch.as_tensor(np.asarray(parts[key]), dtype=torch.long)
            for key in ("train", "valid", "test")}


class BenchmarkDataset:
    """What a training loop needs to know about a graph benchmark.

    Attributes:
        name (str): registry name, e.g. ``"ogbg-molbace"``, ``"MUTAG"``, ``"enas"``, ``"sst"``.
        dataset (torch_geometric.data.Dataset): graphs with ``x``, ``edge_index``,
            ``edge_attr`` (``None`` where a dataset has no edge features) and ``y``.
        task_type (str): ``"binary classification"``, ``"multiclass classification"`` or
            ``"regression"``.
        num_tasks (int): output columns (binary / regression) or classes (multiclass).
        metric (str): the main metric, ``"rocauc"``, ``"ap"``, ``"rmse"``, ``"mae"``, ``"pearson"``
            or ``"acc"``; model selection uses it.
        extra_metrics (tuple of str): further metrics reported beside :attr:`metric`, e.g.
            ``("pearson",)`` for ``enas``, ``("acc_all_nodes",)`` for ``sst``.
        features (str): ``"ogb"`` (integer columns for ogb's AtomEncoder / BondEncoder),
            ``"onehot"`` (float node / edge labels) or ``"tokens"`` (``x`` is ``[N, 1]`` long word
            ids, 0 = no word, 1 = unknown word; the model embeds them).
        orientation (str): ``"index"`` (undirected graphs, oriented by node index by the models)
            or ``"given"`` (directed data: ``edge_index`` holds the direction; never re-orient).
        task_level (str): ``"graph"`` (``y`` per graph) or ``"node"`` (``y`` has one entry per
            node, -1 = unlabelled, and ``root_mask`` marks the nodes the main metric scores).
        vocabulary (list of str or None): for ``"tokens"`` features, the word of each id
            (``vocabulary[0] == ""`` for no word, ``vocabulary[1] == "<unk>"``).
        num_node_features, num_edge_features (int): feature columns (0 when there are none); for
            ``"tokens"`` features, the vocabulary size including ids 0 and 1.
        num_folds (int): 10 for TU datasets (the pLSTM paper's protocol), else 1.
    """

    def __init__(self, name: str, dataset: Dataset, *, task_type: str, num_tasks: int, metric: str,
                 features: str, splits: List[Split], evaluator: Optional[Callable] = None,
                 orientation: str = "index", task_level: str = "graph",
                 extra_metrics: Sequence[str] = (), vocabulary: Optional[Sequence[str]] = None):
        check_one_of(task_type, "task_type", TASK_TYPES)
        check_one_of(metric, "metric", HIGHER_IS_BETTER)
        for extra in extra_metrics:
            check_one_of(extra, "extra_metrics", HIGHER_IS_BETTER)
        check_one_of(features, "features", FEATURES)
        check_one_of(orientation, "orientation", ORIENTATIONS)
        check_one_of(task_level, "task_level", TASK_LEVELS)
        if (features == "tokens") != (vocabulary is not None):
            raise ValueError(f"vocabulary: expected a list of words exactly when features is 'tokens', "
                             f"got features={features!r} and vocabulary={type(vocabulary).__name__}")
        if not splits:
            raise ValueError("splits: expected at least one split")
        self.name = name
        self.dataset = dataset
        self.task_type = task_type
        self.num_tasks = int(num_tasks)
        self.metric = metric
        self.extra_metrics = tuple(extra_metrics)
        self.features = features
        self.orientation = orientation
        self.task_level = task_level
        self.vocabulary = None if vocabulary is None else list(vocabulary)
        self._splits = splits
        self._evaluator = evaluator

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.metric]

    @property
    def num_folds(self) -> int:
        return len(self._splits)

    @property
    def num_node_features(self) -> int:
        if self.vocabulary is not None:
            return len(self.vocabulary)
        return self.dataset.num_node_features

    @property
    def num_edge_features(self) -> int:
        return self.dataset.num_edge_features

    def split(self, fold: Optional[int] = None) -> Split:
        """``{"train", "valid", "test"}`` -> LongTensor indices into :attr:`dataset`.

        ``fold`` in ``0 .. num_folds - 1`` is required when ``num_folds > 1`` (TU datasets) and
        must be ``None`` otherwise.
        """
        if self.num_folds == 1:
            if fold is not None:
                raise ValueError(f"fold: {self.name} has a single split, so fold must be None, got {fold!r}")
            fold = 0
        elif isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < self.num_folds:
            raise ValueError(f"fold: {self.name} has {self.num_folds} folds, so fold must be an int "
                             f"in 0..{self.num_folds - 1}, got {fold!r}")
        return {key: index.clone() for key, index in self._splits[fold].items()}

    def evaluate(self, y_true, y_pred, mask=None) -> float:
        """The dataset's :attr:`metric` of predictions ``y_pred`` against labels ``y_true``.

        Graph-level datasets: shapes as ``ogb.graphproppred.Evaluator`` expects,
        [num_graphs, num_tasks]; for ``"acc"``, labels [num_graphs] and logits
        [num_graphs, num_classes]. ``mask`` is not used.

        Node-level datasets (``task_level == "node"``): pass every node of the graphs scored,
        in one batch or concatenated over batches: ``y_true`` = ``data.y`` [N] (class ids,
        -1 = unlabelled), ``y_pred`` = logits [N, num_classes] and ``mask`` = ``data.root_mask``
        [N] (bool). The main metric scores the labelled nodes of ``mask`` (for ``sst``, the
        root of each sentence: root accuracy).
        """
        return self.evaluate_metric(self.metric, y_true, y_pred, mask)

    def evaluate_metric(self, name: str, y_true, y_pred, mask=None) -> float:
        """Metric ``name`` (:attr:`metric` or one of :attr:`extra_metrics`), with the inputs of
        :meth:`evaluate`. On node-level datasets, metrics in :data:`ALL_NODE_METRICS`
        (``"acc_all_nodes"``) score every labelled node and ignore ``mask``."""
        check_one_of(name, "name", (self.metric, *self.extra_metrics))
        if self.task_level == "node":
            y_true, y_pred = self._scored_nodes(name, y_true, y_pred, mask)
        if name == self.metric and self._evaluator is not None:
            return float(self._evaluator(y_true, y_pred))
        return compute_metric(name, y_true, y_pred)

    def _scored_nodes(self, name: str, y_true, y_pred, mask):
        y_true, y_pred = torch.as_tensor(y_true).reshape(-1), torch.as_tensor(y_pred)
        if y_pred.size(0) != y_true.numel():
            raise ValueError(f"y_true, y_pred: expected one row of y_pred per node ({y_true.numel()}), "
                             f"got y_pred of shape {tuple(y_pred.shape)}")
        scored = y_true >= 0
        if name not in ALL_NODE_METRICS:
            if mask is None:
                raise ValueError(f"mask: {self.name} scores {name!r} on the nodes of data.root_mask; "
                                 f"pass mask=root_mask for the same nodes as y_true")
            mask = torch.as_tensor(mask).reshape(-1)
            if mask.dtype != torch.bool or mask.numel() != y_true.numel():
                raise ValueError(f"mask: expected a bool tensor with one entry per node ({y_true.numel()}), "
                                 f"got {mask.dtype} of shape {tuple(mask.shape)}")
            scored &= mask
        return y_true[scored], y_pred[scored]

    def __len__(self) -> int:
        return len(self.dataset)

    def __repr__(self) -> str:
        extra = "".join(f", {key}={value!r}" for key, value, default in (
            ("orientation", self.orientation, "index"), ("task_level", self.task_level, "graph"),
            ("extra_metrics", self.extra_metrics, ())) if value != default)
        return (f"{self.__class__.__name__}({self.name!r}, graphs={len(self.dataset)}, "
                f"task_type={self.task_type!r}, num_tasks={self.num_tasks}, metric={self.metric!r}, "
                f"features={self.features!r}, num_folds={self.num_folds}{extra})")
