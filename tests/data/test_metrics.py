import numpy as np
import pytest
import torch
from ogb.graphproppred import Evaluator

from scipy.stats import pearsonr

from plstm_graph.data.metrics import HIGHER_IS_BETTER, accuracy, compute_metric, mae, pearson


@pytest.mark.parametrize("name, metric", [("ogbg-moltox21", "rocauc"), ("ogbg-molpcba", "ap"),
                                          ("ogbg-mollipo", "rmse")])
def test_agrees_with_ogbs_evaluator_including_missing_labels(name, metric):
    evaluator = Evaluator(name)
    rng = np.random.default_rng(0)
    shape = (200, evaluator.num_tasks)
    y_true = rng.integers(0, 2, shape).astype(float) if metric != "rmse" else rng.normal(size=shape)
    y_true[rng.random(shape) < 0.2] = np.nan
    y_pred = rng.normal(size=shape)
    expected = evaluator.eval({"y_true": y_true, "y_pred": y_pred})[metric]
    ours = compute_metric(metric, torch.from_numpy(y_true), torch.from_numpy(y_pred))
    assert ours == pytest.approx(expected)


def test_mae_accuracy_and_errors():
    assert mae([[1.0], [np.nan], [3.0]], [[2.0], [9.0], [1.0]]) == pytest.approx(1.5)
    logits = torch.tensor([[5.0, 0, 0], [0, 0, 1], [0, 0, 1]])
    assert accuracy(torch.tensor([0, 2, 1]), logits) == pytest.approx(2 / 3)
    assert set(HIGHER_IS_BETTER) == {"rocauc", "ap", "rmse", "mae", "acc", "acc_all_nodes", "pearson"}
    with pytest.raises(ValueError, match="metric: expected one of"):
        compute_metric("f1", [1], [1])
    with pytest.raises(ValueError, match="y_true, y_pred: expected equal shapes"):
        compute_metric("rmse", np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="no task has labels to score from both classes"):
        compute_metric("rocauc", [[1.0], [1.0]], [[0.2], [0.3]])


def test_pearson_per_task_with_missing_labels():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    y_pred[:, 1] += y_true[:, 1]
    y_true[3, 0] = np.nan
    expected = (pearsonr(np.delete(y_true[:, 0], 3), np.delete(y_pred[:, 0], 3))[0]
                + pearsonr(y_true[:, 1], y_pred[:, 1])[0]) / 2
    assert pearson(torch.from_numpy(y_true), torch.from_numpy(y_pred)) == pytest.approx(expected)
    by_hand = 15 / np.sqrt(228)  # deviations (-1, 0, 1) and (-7, -1, 8) / 3
    assert compute_metric("pearson", [1.0, 2.0, 3.0], [2.0, 4.0, 7.0]) == pytest.approx(by_hand)
    assert np.isnan(pearson([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))  # undefined for constant predictions
    assert HIGHER_IS_BETTER["pearson"] and HIGHER_IS_BETTER["acc_all_nodes"]
