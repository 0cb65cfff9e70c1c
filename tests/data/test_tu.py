import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.model_selection import StratifiedKFold

from plstm_graph.data import DatasetFileError, DatasetNotFoundError, get_dataset, tu_splits
from plstm_graph.data import tu as tu_module

SIZES = {"MUTAG": 188, "PTC_MR": 344, "PROTEINS": 1113, "NCI1": 4110}
FEATURES = {"MUTAG": (7, 4), "PTC_MR": (18, 4), "PROTEINS": (3, 0), "NCI1": (37, 0)}


@pytest.fixture(scope="module")
def tu_datasets(shared_data):
    return {name: get_dataset(name, root=shared_data) for name in SIZES}


@pytest.mark.parametrize("name", SIZES)
def test_sizes_features_and_task(tu_datasets, name):
    ds = tu_datasets[name]
    assert len(ds.dataset) == SIZES[name]
    assert (ds.task_type, ds.num_tasks, ds.metric, ds.higher_is_better, ds.features, ds.num_folds) == (
        "multiclass classification", 2, "acc", True, "onehot", 10)
    assert (ds.num_node_features, ds.num_edge_features) == FEATURES[name]
    graph = ds.dataset[0]
    assert graph.x.dtype == torch.float32 and set(graph.x.unique().tolist()) <= {0.0, 1.0}
    assert (graph.x.sum(1) == 1).all()  # one-hot node labels
    assert (graph.edge_attr is None) == (FEATURES[name][1] == 0)


@pytest.mark.parametrize("name", SIZES)
def test_folds_partition_and_are_stratified(tu_datasets, name):
    ds = tu_datasets[name]
    n, labels = SIZES[name], ds.dataset.y.numpy()
    classes = Counter(labels.tolist())
    tests = []
    for fold in range(10):
        split = ds.split(fold)
        train, valid, test = (split[k].numpy() for k in ("train", "valid", "test"))
        assert len(np.intersect1d(train, valid)) == len(np.intersect1d(train, test)) == 0
        assert len(np.intersect1d(valid, test)) == 0
        assert len(train) + len(valid) + len(test) == n
        assert len(test) in (n // 10, -(-n // 10))
        assert len(valid) == -(-(n - len(test)) // 9)  # 1/9 of the other nine folds, rounded up
        for part in (test, valid, train):  # each class within one graph of its share
            counts = Counter(labels[part].tolist())
            for label, total in classes.items():
                assert abs(counts[label] - total * len(part) / n) <= 1, (fold, label)
        tests.append(test)
    np.testing.assert_array_equal(np.sort(np.concatenate(tests)), np.arange(n))


def test_protocol_is_sklearns_stratified_kfold_with_seed_42(tu_datasets):
    labels = tu_datasets["MUTAG"].dataset.y.numpy()
    expected = [np.sort(test) for _, test in
                StratifiedKFold(10, shuffle=True, random_state=42).split(np.zeros(len(labels)), labels)]
    for fold in range(10):
        np.testing.assert_array_equal(tu_datasets["MUTAG"].split(fold)["test"].numpy(), expected[fold])
    again = tu_splits(labels)
    assert all(torch.equal(again[3][k], tu_datasets["MUTAG"].split(3)[k]) for k in ("train", "valid", "test"))


@pytest.mark.parametrize("fold", [None, -1, 10, 1.0, True])
def test_fold_is_required_and_checked(tu_datasets, fold):
    with pytest.raises(ValueError, match=r"fold: MUTAG has 10 folds"):
        tu_datasets["MUTAG"].split(fold)


def test_evaluate_is_accuracy_of_argmax(tu_datasets):
    ds = tu_datasets["MUTAG"]
    y = ds.dataset.y[:10]
    logits = torch.nn.functional.one_hot(y, 2).float()
    logits[:3] = logits[:3].flip(1)  # three wrong
    assert ds.evaluate(y, logits) == pytest.approx(0.7)
    assert ds.evaluate(y.view(-1, 1), logits.argmax(1)) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="y_true, y_pred"):
        ds.evaluate(y, logits[:5])


def test_processed_files_never_go_beside_the_raw_files(shared_data, tu_datasets, data_cache):
    assert not (shared_data / "tu" / "MUTAG" / "processed").exists()
    assert str(tu_datasets["MUTAG"].dataset.processed_dir).startswith(str(data_cache))


@pytest.fixture
def mutag_raw(shared_data, tmp_path):
    """A writable copy of MUTAG in the <root>/NAME/raw layout."""
    raw = tmp_path / "MUTAG" / "raw"
    shutil.copytree(shared_data / "tu" / "MUTAG" / "raw", raw)
    return raw


def test_root_name_raw_layout_works(mutag_raw):
    ds = get_dataset("MUTAG", root=mutag_raw.parents[1])
    assert len(ds.dataset) == 188 and sorted(p.name for p in mutag_raw.parent.iterdir()) == ["raw"]


def test_missing_file_is_named(mutag_raw):
    (mutag_raw / "MUTAG_graph_labels.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"MUTAG_graph_labels\.txt: missing"):
        get_dataset("MUTAG", root=mutag_raw.parents[1])


def test_corrupt_file_is_named(mutag_raw):
    path = mutag_raw / "MUTAG_node_labels.txt"
    path.write_text(path.read_text().replace("\n2\n", "\nnitrogen\n", 1))
    with pytest.raises(DatasetFileError, match=r"MUTAG_node_labels\.txt: cannot be read"):
        get_dataset("MUTAG", root=mutag_raw.parents[1])


def test_any_tu_name_downloads_or_says_where_files_go(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(tu_module.TUDataset, "download", no_network)
    with pytest.raises(DatasetNotFoundError, match=r"ENZYMES_A\.txt, ENZYMES_graph_indicator\.txt"):
        get_dataset("tu:ENZYMES", root=tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatasetNotFoundError, match="no raw files"):
        get_dataset("tu:ENZYMES", root=tmp_path, download=False)


def test_a_missing_root_is_named_and_not_created(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(tu_module.TUDataset, "download", no_network)
    root = tmp_path / "no" / "such"
    with pytest.raises(DatasetNotFoundError, match=rf"data roots \({root} \(does not exist\)\)"):
        get_dataset("tu:ENZYMES", root=root)
    assert list(tmp_path.iterdir()) == []


def test_unreadable_processed_file_is_processed_again(mutag_raw):
    processed = Path(get_dataset("MUTAG", root=mutag_raw.parents[1]).dataset.processed_dir) / "data.pt"
    processed.write_bytes(b"")  # what a process killed while writing it would leave without atomic writes
    with pytest.warns(UserWarning, match="cannot be loaded"):
        assert len(get_dataset("MUTAG", root=mutag_raw.parents[1]).dataset) == 188
