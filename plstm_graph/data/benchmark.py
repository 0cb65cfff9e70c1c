"""A benchmark dataset: the PyG dataset plus its task, metric, features and splits."""
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch_geometric.data import Dataset

from plstm_graph.data.metrics import HIGHER_IS_BETTER, compute_metric

TASK_TYPES = ("binary classification", "multiclass classification", "regression")
FEATURES = ("ogb", "onehot")

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
        name (str): registry name, e.g. ``"ogbg-molbace"``, ``"MUTAG"``, ``"tpsa"``.
        dataset (torch_geometric.data.Dataset): graphs with ``x``, ``edge_index``,
            ``edge_attr`` (``None`` for TU sets without edge labels) and ``y``.
        task_type (str): ``"binary classification"``, ``"multiclass classification"`` or
            ``"regression"``.
        num_tasks (int): output columns (binary / regression) or classes (multiclass).
        metric (str): ``"rocauc"``, ``"ap"``, ``"rmse"``, ``"mae"`` or ``"acc"``.
        features (str): ``"ogb"`` (integer columns for ogb's AtomEncoder / BondEncoder) or
            ``"onehot"`` (float node / edge labels).
        num_node_features, num_edge_features (int): feature columns (0 when there are none).
        num_folds (int): 10 for TU datasets (the pLSTM paper's protocol), else 1.
    """

    def __init__(self, name: str, dataset: Dataset, *, task_type: str, num_tasks: int, metric: str,
                 features: str, splits: List[Split], evaluator: Optional[Callable] = None):
        if task_type not in TASK_TYPES:
            raise ValueError(f"task_type: expected one of {TASK_TYPES}, got {task_type!r}")
        if metric not in HIGHER_IS_BETTER:
            raise ValueError(f"metric: expected one of {sorted(HIGHER_IS_BETTER)}, got {metric!r}")
        if features not in FEATURES:
            raise ValueError(f"features: expected one of {FEATURES}, got {features!r}")
        if not splits:
            raise ValueError("splits: expected at least one split")
        self.name = name
        self.dataset = dataset
        self.task_type = task_type
        self.num_tasks = int(num_tasks)
        self.metric = metric
        self.features = features
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

    def evaluate(self, y_true, y_pred) -> float:
        """The dataset's :attr:`metric` of predictions ``y_pred`` against labels ``y_true``
        (shapes as ``ogb.graphproppred.Evaluator`` expects: [num_graphs, num_tasks]; for
        ``"acc"``, labels [N] and logits [N, num_classes])."""
        if self._evaluator is not None:
            return float(self._evaluator(y_true, y_pred))
        return compute_metric(self.metric, y_true, y_pred)

    def __len__(self) -> int:
        return len(self.dataset)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.name!r}, graphs={len(self.dataset)}, "
                f"task_type={self.task_type!r}, num_tasks={self.num_tasks}, metric={self.metric!r}, "
                f"features={self.features!r}, num_folds={self.num_folds})")
