import pytest
import torch
from torch_geometric.data import Data, InMemoryDataset

from plstm_graph.data import BenchmarkDataset
from plstm_graph.data.benchmark import as_split


class Graphs(InMemoryDataset):
    def __init__(self, graphs):
        super().__init__()
        self.data, self.slices = self.collate(graphs)


def tree_dataset(**kwargs):
    """Two trees with node-level labels (-1 = none), word ids as features."""
    graphs = [Data(x=torch.tensor([[0], [2], [3]]), edge_index=torch.tensor([[1, 2], [0, 0]]),
                   y=torch.tensor([1, 0, -1]), root_mask=torch.tensor([True, False, False])),
              Data(x=torch.tensor([[0], [1], [2]]), edge_index=torch.tensor([[1, 2], [0, 0]]),
                   y=torch.tensor([0, 1, 1]), root_mask=torch.tensor([True, False, False]))]
    split = as_split({"train": [0], "valid": [1], "test": [1]})
    options = dict(task_type="multiclass classification", num_tasks=2, metric="acc", features="tokens",
                   splits=[split], orientation="given", task_level="node", extra_metrics=("acc_all_nodes",),
                   vocabulary=["", "<unk>", "good", "bad"])
    return BenchmarkDataset("trees", Graphs(graphs), **{**options, **kwargs})


def test_defaults_keep_the_graph_level_behaviour():
    graphs = Graphs([Data(x=torch.ones(2, 3), edge_index=torch.tensor([[0], [1]]), y=torch.tensor([[1.0]]))])
    ds = BenchmarkDataset("g", graphs, task_type="regression", num_tasks=1, metric="rmse", features="onehot",
                          splits=[as_split({"train": [0], "valid": [0], "test": [0]})])
    assert (ds.orientation, ds.task_level, ds.extra_metrics, ds.vocabulary) == ("index", "graph", (), None)
    assert ds.num_node_features == 3
    assert repr(ds) == ("BenchmarkDataset('g', graphs=1, task_type='regression', num_tasks=1, metric='rmse', "
                        "features='onehot', num_folds=1)")
    assert ds.evaluate([[1.0], [2.0]], [[1.0], [4.0]]) == pytest.approx(2 ** 0.5)
    assert ds.evaluate([[1.0], [2.0]], [[1.0], [4.0]], mask=torch.tensor([True, False])) == pytest.approx(2 ** 0.5)


def test_node_level_metrics_use_the_mask_or_every_labelled_node():
    ds = tree_dataset()
    assert ds.num_node_features == 4  # the vocabulary, not the one column of x
    assert "orientation='given', task_level='node', extra_metrics=('acc_all_nodes',)" in repr(ds)
    y = torch.cat([ds.dataset[0].y, ds.dataset[1].y])
    roots = torch.cat([ds.dataset[0].root_mask, ds.dataset[1].root_mask])
    logits = torch.tensor([[0.0, 1], [1, 0], [1, 0], [0, 1], [0, 1], [1, 0]])  # roots: right, wrong
    assert ds.evaluate(y, logits, mask=roots) == pytest.approx(1 / 2)
    assert ds.evaluate_metric("acc", y, logits, roots) == pytest.approx(1 / 2)
    # labelled nodes: 1, 0, (none), 0, 1, 1 against predictions 1, 0, -, 1, 1, 0
    assert ds.evaluate_metric("acc_all_nodes", y, logits, roots) == pytest.approx(3 / 5)
    assert ds.evaluate_metric("acc_all_nodes", y.numpy(), logits.numpy()) == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="mask: trees scores 'acc' on the nodes of data.root_mask"):
        ds.evaluate(y, logits)
    with pytest.raises(ValueError, match="mask: expected a bool tensor with one entry per node"):
        ds.evaluate(y, logits, mask=roots.long())
    with pytest.raises(ValueError, match="y_true, y_pred: expected one row of y_pred per node"):
        ds.evaluate(y, logits[:5], mask=roots)
    with pytest.raises(ValueError, match="name must be one of acc, acc_all_nodes.*got 'rmse'"):
        ds.evaluate_metric("rmse", y, logits)


@pytest.mark.parametrize("change, message", [
    (dict(orientation="reverse"), "orientation must be one of index, given.*got 'reverse'"),
    (dict(task_level="edge"), "task_level must be one of graph, node.*got 'edge'"),
    (dict(extra_metrics=("f1",)), "extra_metrics must be one of .*got 'f1'"),
    (dict(features="words"), "features must be one of ogb, onehot, tokens.*got 'words'"),
    (dict(vocabulary=None), "vocabulary: expected a list of words exactly when features is 'tokens'"),
    (dict(features="onehot"), "vocabulary: expected a list of words exactly when features is 'tokens'"),
])
def test_bad_arguments_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        tree_dataset(**change)
