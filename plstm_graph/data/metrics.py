"""Evaluation metrics with OGB's conventions, for the datasets that have no ``ogb`` Evaluator.

Multi-task inputs are [num_graphs, num_tasks]; NaN in ``y_true`` marks a missing label and is
ignored. ROC-AUC and AP average over the tasks that have both classes; RMSE and MAE are computed
per task and averaged over tasks (as ``ogb.graphproppred.Evaluator`` does for RMSE), and so is
Pearson's r. Accuracy takes class indices and logits; ``"acc_all_nodes"`` is the same accuracy,
named apart because a node-level dataset scores it on every labelled node rather than on the
nodes of its mask (see :meth:`plstm_graph.data.BenchmarkDataset.evaluate`).
"""
from typing import Callable, Dict

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

#: Whether a larger value of each metric is better.
HIGHER_IS_BETTER: Dict[str, bool] = {"rocauc": True, "ap": True, "acc": True, "acc_all_nodes": True,
                                     "pearson": True, "rmse": False, "mae": False}


def _as_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _as_tasks(y_true, y_pred):
    y_true, y_pred = _as_numpy(y_true), _as_numpy(y_pred)
    if y_true.ndim == 1:
        y_true = y_true[:, None]
    if y_pred.ndim == 1:
        y_pred = y_pred[:, None]
    if y_true.ndim != 2 or y_true.shape != y_pred.shape:
        raise ValueError(f"y_true, y_pred: expected equal shapes [num_graphs, num_tasks], "
                         f"got {tuple(y_true.shape)} and {tuple(y_pred.shape)}")
    return y_true.astype(np.float64), y_pred.astype(np.float64)


def _per_task(score: Callable, y_true, y_pred, need_both_classes: bool) -> float:
    y_true, y_pred = _as_tasks(y_true, y_pred)
    values = []
    for task in range(y_true.shape[1]):
        labelled = ~np.isnan(y_true[:, task])
        truth = y_true[labelled, task]
        if need_both_classes and not ((truth == 1).any() and (truth == 0).any()):
            continue
        if truth.size:
            values.append(score(truth, y_pred[labelled, task]))
    if not values:
        raise ValueError("y_true: no task has labels to score"
                         + (" from both classes" if need_both_classes else ""))
    return float(np.mean(values))


def rocauc(y_true, y_pred) -> float:
    """Mean ROC-AUC over the tasks with both classes among their labels."""
    return _per_task(roc_auc_score, y_true, y_pred, need_both_classes=True)


def average_precision(y_true, y_pred) -> float:
    """Mean average precision over the tasks with both classes among their labels."""
    return _per_task(average_precision_score, y_true, y_pred, need_both_classes=True)


def rmse(y_true, y_pred) -> float:
    """Root mean squared error per task over labelled graphs, averaged over tasks."""
    return _per_task(lambda t, p: np.sqrt(np.mean((t - p) ** 2)), y_true, y_pred, need_both_classes=False)


def mae(y_true, y_pred) -> float:
    """Mean absolute error per task over labelled graphs, averaged over tasks."""
    return _per_task(lambda t, p: np.mean(np.abs(t - p)), y_true, y_pred, need_both_classes=False)


def pearson(y_true, y_pred) -> float:
    """Pearson's correlation coefficient per task over labelled graphs, averaged over tasks
    (NaN when the labels or the predictions of a task are constant)."""
    return _per_task(_pearson, y_true, y_pred, need_both_classes=False)


def _pearson(truth: np.ndarray, pred: np.ndarray) -> float:
    if truth.size < 2 or np.ptp(truth) == 0 or np.ptp(pred) == 0:
        return float("nan")  # undefined; np.corrcoef would warn about dividing by zero
    return float(np.corrcoef(truth, pred)[0, 1])


def accuracy(y_true, y_pred) -> float:
    """Classification accuracy. ``y_true``: class indices [N] or [N, 1]; ``y_pred``: logits or
    probabilities [N, C] (argmax taken), or predicted class indices [N] / [N, 1]."""
    y_true, y_pred = _as_numpy(y_true).reshape(-1), _as_numpy(y_pred)
    given = tuple(y_pred.shape)
    if y_pred.ndim == 2 and y_pred.shape[1] > 1:
        y_pred = y_pred.argmax(axis=1)
    y_pred = y_pred.reshape(-1)
    if y_pred.shape != y_true.shape or y_true.size == 0:
        raise ValueError(f"y_true, y_pred: expected one prediction per label ({y_true.size} > 0), "
                         f"got y_pred of shape {given}")
    return float(np.mean(y_pred == y_true))


METRICS: Dict[str, Callable] = {"rocauc": rocauc, "ap": average_precision, "rmse": rmse, "mae": mae,
                                "pearson": pearson, "acc": accuracy, "acc_all_nodes": accuracy}


def compute_metric(metric: str, y_true, y_pred) -> float:
    """``METRICS[metric](y_true, y_pred)``; ``ValueError`` for an unknown ``metric``."""
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {sorted(METRICS)}, got {metric!r}")
    return METRICS[metric](y_true, y_pred)
