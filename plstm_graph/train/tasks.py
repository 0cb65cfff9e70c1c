"""Losses and metrics per task type (the ``task_type`` of a dataset)."""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..graph.validation import check_one_of
from ..nn.models import TASK_LEVELS

TASK_TYPES = ("binary classification", "multiclass classification", "regression")


class Task:
    """How a dataset's targets are shaped, which loss trains them and how they are scored.

    * binary classification: ``[B, T]`` 0/1 targets (NaN = missing), BCE-with-logits on the
      labelled entries;
    * multiclass classification: ``[B]`` class indices, cross-entropy;
    * regression: ``[B, T]`` targets (NaN = missing), MSE in units of the training targets'
      standard deviation (``scale``), so the loss is O(1) whatever the units.

    Node-level tasks (``task_level="node"``) have one target per node; multiclass node labels
    of ``-1`` (no label) are left out of the loss.

    Args:
        task_type: one of :data:`TASK_TYPES`.
        num_tasks: output columns (binary / regression) or classes (multiclass).
        task_level: ``"graph"`` or ``"node"``.
    """

    def __init__(self, task_type: str, num_tasks: int, task_level: str = "graph"):
        check_one_of(task_type, "task_type", TASK_TYPES)
        check_one_of(task_level, "task_level", TASK_LEVELS)
        self.task_type, self.num_tasks, self.task_level = task_type, num_tasks, task_level
        self.scale = None

    @property
    def node_level(self) -> bool:
        return self.task_level == "node"

    @property
    def multiclass(self) -> bool:
        return self.task_type == "multiclass classification"

    def targets(self, y: Tensor) -> Tensor:
        if self.multiclass:
            return y.view(-1).long()
        return y.view(-1, self.num_tasks).float()

    def target_scale(self, ys: list) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation per task of the training targets (regression), else 0 / 1."""
        if self.task_type != "regression":
            return torch.zeros(self.num_tasks), torch.ones(self.num_tasks)
        y = torch.cat([self.targets(t) for t in ys]).double()
        known = ~torch.isnan(y)
        count = known.sum(0).clamp(min=1)
        mean = torch.where(known, y, 0).sum(0) / count
        var = torch.where(known, (y - mean) ** 2, 0).sum(0) / count
        std = var.sqrt()
        return mean.float(), torch.where(std > 0, std, torch.ones_like(std)).float()

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        y = self.targets(y)
        if self.multiclass:
            return F.cross_entropy(pred, y, ignore_index=-1)
        known = ~torch.isnan(y)
        if self.task_type == "binary classification":
            return F.binary_cross_entropy_with_logits(pred[known], y[known])
        scale = self.scale if self.scale is not None else torch.ones(self.num_tasks)
        diff = (pred - y) / scale.to(pred.device)
        return diff[known].pow(2).mean()


def metric_names(dataset) -> tuple[str, ...]:
    """The dataset's main metric, then its extra ones (e.g. Pearson r beside RMSE)."""
    return (dataset.metric, *getattr(dataset, "extra_metrics", ()))


def score(dataset, y_true: Tensor, y_pred: Tensor, root_mask: Tensor | None = None,
          name: str | None = None) -> float:
    """Metric ``name`` of the dataset (default: its main metric, ``dataset.evaluate``); NaN where
    it is undefined (e.g. ROC-AUC on a batch with a single class). Node-level datasets also get
    the root mask of their graphs."""
    kwargs = {} if root_mask is None else {"mask": root_mask}
    try:
        value = (dataset.evaluate(y_true, y_pred, **kwargs) if name in (None, dataset.metric)
                 else dataset.evaluate_metric(name, y_true, y_pred, **kwargs))
    except (RuntimeError, ValueError, ZeroDivisionError):
        return math.nan
    value = float(value)
    return value if np.isfinite(value) else math.nan


def scores(dataset, y_true: Tensor, y_pred: Tensor, root_mask: Tensor | None = None) -> dict:
    """Every metric of :func:`metric_names`, by name."""
    return {name: score(dataset, y_true, y_pred, root_mask, name) for name in metric_names(dataset)}
