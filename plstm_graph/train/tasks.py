"""Losses and metrics per task type (the ``task_type`` of a dataset)."""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

TASK_TYPES = ("binary classification", "multiclass classification", "regression")


class Task:
    """How a dataset's targets are shaped, which loss trains them and how they are scored.

    * binary classification: ``[B, T]`` 0/1 targets (NaN = missing), BCE-with-logits on the
      labelled entries;
    * multiclass classification: ``[B]`` class indices, cross-entropy;
    * regression: ``[B, T]`` targets (NaN = missing), MSE in units of the training targets'
      standard deviation (``scale``), so the loss is O(1) whatever the units.

    Args:
        task_type: one of :data:`TASK_TYPES`.
        num_tasks: output columns (binary / regression) or classes (multiclass).
    """

    def __init__(self, task_type: str, num_tasks: int):
        if task_type not in TASK_TYPES:
            raise ValueError(f"task_type must be one of {TASK_TYPES}, got {task_type!r}")
        self.task_type, self.num_tasks = task_type, num_tasks
        self.scale = None

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
            return F.cross_entropy(pred, y)
        known = ~torch.isnan(y)
        if self.task_type == "binary classification":
            return F.binary_cross_entropy_with_logits(pred[known], y[known])
        scale = self.scale if self.scale is not None else torch.ones(self.num_tasks)
        diff = (pred - y) / scale.to(pred.device)
        return diff[known].pow(2).mean()


def score(dataset, y_true: Tensor, y_pred: Tensor) -> float:
    """The dataset's own metric (``dataset.evaluate``); NaN where it is undefined (e.g. ROC-AUC
    on a batch with a single class)."""
    try:
        value = dataset.evaluate(y_true, y_pred)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return math.nan
    value = float(value)
    return value if np.isfinite(value) else math.nan
