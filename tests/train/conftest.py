import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, roc_auc_score
from torch_geometric.data import Data


class ToyDataset:
    """A small synthetic dataset following the ``plstm_graph.data.get_dataset`` contract:
    random molecules-sized graphs, target = whether the graph has more than 12 nodes
    (binary) or its number of edges (regression)."""

    def __init__(self, task_type="binary classification", size=60, num_folds=1, seed=0):
        gen = torch.Generator().manual_seed(seed)
        self.name, self.task_type, self.num_folds = "toy", task_type, num_folds
        self.num_tasks = 1
        self.features, self.num_node_features, self.num_edge_features = "onehot", 3, 2
        self.metric = "rocauc" if task_type.startswith("binary") else "mae"
        self.higher_is_better = self.metric == "rocauc"
        self.dataset = []
        for _ in range(size):
            n = int(torch.randint(5, 20, (1,), generator=gen))
            src = torch.arange(n - 1)
            extra = torch.randint(0, n, (2, 2), generator=gen)
            edges = torch.cat([torch.stack([src, src + 1]), extra], 1)
            edges = edges[:, edges[0] != edges[1]]
            edge_index = torch.cat([edges, edges.flip(0)], 1)
            y = float(n > 12) if self.metric == "rocauc" else float(edge_index.size(1))
            x = torch.nn.functional.one_hot(torch.randint(0, 3, (n,), generator=gen), 3).float()
            edge_attr = torch.rand(edge_index.size(1), 2, generator=gen)
            self.dataset.append(Data(x=x, edge_index=edge_index, edge_attr=edge_attr,
                                     y=torch.tensor([[y]])))

    def split(self, fold=None):
        n = len(self.dataset)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(0 if fold is None else fold))
        a, b = int(0.6 * n), int(0.8 * n)
        return {"train": perm[:a], "valid": perm[a:b], "test": perm[b:]}

    def evaluate(self, y_true, y_pred):
        y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
        if self.metric == "rocauc":
            return float(roc_auc_score(y_true, y_pred))
        return float(mean_absolute_error(y_true, y_pred))


@pytest.fixture(autouse=True)
def _one_thread(one_thread):  # tests/conftest.py, for every test of this folder
    yield


@pytest.fixture
def make_toy():
    """``make_toy(task_type="binary classification", size=60, num_folds=1)``."""
    return ToyDataset
