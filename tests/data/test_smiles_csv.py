import gzip

import numpy as np
import pandas as pd
import pytest
import torch

from plstm_graph.data import DatasetFileError, SmilesDataset, load_smiles_csv, smiles_to_graph

ROWS = [("CCO", 1.0, 0.5), ("c1ccccc1O", 0.0, np.nan), ("CC(=O)O", np.nan, 1.5), ("c1ccncc1", 1.0, 2.0),
        ("C1CCCCC1N", 0.0, -1.0), ("CCN(CC)CC", 1.0, 0.0), ("c1ccc2ccccc2c1", 0.0, 3.0),
        ("OCC(O)CO", 1.0, 1.0)]


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "molecules.csv"
    pd.DataFrame(ROWS, columns=["SMILES", "active", "logS"]).to_csv(path, index=False)
    return path


def test_graphs_labels_and_task_inference(csv):
    ds = load_smiles_csv(csv, "SMILES", ["active"])
    assert (ds.task_type, ds.metric, ds.num_tasks, ds.features, len(ds)) == (
        "binary classification", "rocauc", 1, "ogb", 8)
    graph = ds.dataset[1]
    expected = smiles_to_graph("c1ccccc1O")
    assert torch.equal(graph.x, torch.from_numpy(expected["node_feat"]))
    assert torch.equal(graph.edge_index, torch.from_numpy(expected["edge_index"]))
    assert torch.equal(graph.edge_attr, torch.from_numpy(expected["edge_feat"]))
    assert graph.y.dtype == torch.float32 and graph.y.shape == (1, 1)
    assert torch.isnan(ds.dataset[2].y).all()  # a missing label stays missing
    both = load_smiles_csv(csv, "SMILES", ["active", "logS"], task_type="regression", metric="mae")
    assert (both.num_tasks, both.metric, both.higher_is_better) == (2, "mae", False)
    assert load_smiles_csv(csv, "SMILES", ["logS"]).task_type == "regression"


def test_scaffold_and_random_splits_partition(csv):
    for split, kwargs in (("scaffold", {}), ("random", {"seed": 1})):
        ds = load_smiles_csv(csv, target_columns=["logS"], split=split, **kwargs)
        parts = ds.split()
        np.testing.assert_array_equal(np.sort(torch.cat(list(parts.values())).numpy()), np.arange(8))
    a = load_smiles_csv(csv, target_columns=["logS"], split="random", seed=1).split()
    b = load_smiles_csv(csv, target_columns=["logS"], split="random", seed=2).split()
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_bad_smiles_names_row_and_line(csv, tmp_path):
    frame = pd.read_csv(csv)
    frame.loc[5, "SMILES"] = "C1CC(N"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    message = r"bad\.csv: cannot parse the SMILES in 1 row\(s\): row 5 \(line 7\): 'C1CC\(N'"
    with pytest.raises(ValueError, match=message):
        load_smiles_csv(path, "SMILES", ["logS"])
    with pytest.warns(UserWarning, match=r"skipped 1 unparseable SMILES: row 5 \(line 7\)"):
        ds = load_smiles_csv(path, "SMILES", ["logS"], skip_invalid=True)
    assert len(ds) == 7 and ds.dataset.rows.tolist() == [0, 1, 2, 3, 4, 6, 7]
    assert ds.dataset[5].y.item() == 3.0  # row 6 of the file


def test_whitespace_in_smiles_does_not_change_results(csv, tmp_path):
    frame = pd.read_csv(csv)
    frame["SMILES"] = [f"  {s} " for s in frame["SMILES"]]
    spaced = tmp_path / "spaced.csv"
    frame.to_csv(spaced, index=False)
    a, b = load_smiles_csv(csv, "SMILES", ["logS"]), load_smiles_csv(spaced, "SMILES", ["logS"])
    for i in range(8):
        for key in ("x", "edge_index", "edge_attr"):
            assert torch.equal(a.dataset[i][key], b.dataset[i][key])
    assert all(torch.equal(a.split()[k], b.split()[k]) for k in ("train", "valid", "test"))


def test_bad_arguments_are_named(csv, tmp_path):
    with pytest.raises(ValueError, match="smiles_column: .* no column 'smi'"):
        load_smiles_csv(csv, "smi", ["logS"])
    with pytest.raises(ValueError, match=r"target_columns: .* no column\(s\) \['pIC50'\]"):
        load_smiles_csv(csv, "SMILES", ["pIC50"])
    with pytest.raises(ValueError, match="split: expected one of"):
        load_smiles_csv(csv, "SMILES", ["logS"], split="stratified")
    with pytest.raises(ValueError, match="metric: a regression task takes one of"):
        load_smiles_csv(csv, "SMILES", ["logS"], metric="rocauc")
    with pytest.raises(FileNotFoundError, match="absent.csv: no such file"):
        load_smiles_csv(tmp_path / "absent.csv", "SMILES", ["logS"])
    corrupt = tmp_path / "corrupt.csv.gz"
    corrupt.write_bytes(gzip.compress(csv.read_bytes())[:40])
    with pytest.raises(DatasetFileError, match=r"corrupt\.csv\.gz: cannot read it as CSV"):
        load_smiles_csv(corrupt, "SMILES", ["logS"])


def test_processed_dataset_is_cached(csv, monkeypatch):
    # The cache is keyed by the file's name, content and the options, not by its folder.
    first = SmilesDataset(csv, "SMILES", ["logS"], split="random", seed=7)

    def fail(self):
        raise AssertionError("processed again")

    monkeypatch.setattr(SmilesDataset, "process", fail)
    copy = csv.parent / "elsewhere" / csv.name
    copy.parent.mkdir()
    copy.write_bytes(csv.read_bytes())
    second = SmilesDataset(copy, "SMILES", ["logS"], split="random", seed=7)
    assert second.processed_dir == first.processed_dir and len(second) == 8
    with pytest.raises(AssertionError, match="processed again"):  # other options, other cache entry
        SmilesDataset(csv, "SMILES", ["logS"], split="random", seed=8)
    copy.write_text(csv.read_text().replace("CCO,", "CCCO,", 1))
    with pytest.raises(AssertionError, match="processed again"):  # other content, other cache entry
        SmilesDataset(copy, "SMILES", ["logS"], split="random", seed=7)


def test_header_only_csv_is_named(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("SMILES,active\n")
    with pytest.raises(DatasetFileError, match=r"header\.csv: no data rows \(only a header"):
        load_smiles_csv(path, "SMILES", ["active"])

