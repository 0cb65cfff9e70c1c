import gzip
import os
import shutil
import urllib.error

import numpy as np
import pandas as pd
import pytest
import torch
from ogb.graphproppred import Evaluator

from plstm_graph.data import DatasetFileError, DatasetNotFoundError, get_dataset
from plstm_graph.data import ogb as ogb_module
from plstm_graph.data.root import ROOT_ENV


def test_reads_ogbs_own_readonly_folder_without_marker(shared_data, data_cache):
    # ../shared/data/ogb_reference holds OGB's folders, read-only and without RELEASE_v1.txt:
    # ogb would ask whether to update; the loader mirrors them to the cache instead.
    root = shared_data / "ogb_reference"
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    ds = get_dataset("ogbg-molbace", root=root, download=False)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert len(ds.dataset) == 1513
    assert str(ds.dataset.root).startswith(str(data_cache))
    assert (ds.name, ds.task_type, ds.num_tasks) == ("ogbg-molbace", "binary classification", 1)
    assert (ds.metric, ds.higher_is_better, ds.features, ds.num_folds) == ("rocauc", True, "ogb", 1)
    assert (ds.num_node_features, ds.num_edge_features) == (9, 3)
    graph = ds.dataset[0]
    assert graph.x.dtype == graph.edge_attr.dtype == torch.long and graph.y.shape == (1, 1)
    split = ds.split()
    assert {k: len(v) for k, v in split.items()} == {"train": 1210, "valid": 151, "test": 152}
    with pytest.raises(ValueError, match="fold must be None"):
        ds.split(0)
    # A second load reuses the mirror and its processed file.
    assert str(get_dataset("ogbg-molbace", root=root).dataset.root) == str(ds.dataset.root)


def test_evaluate_is_ogbs_evaluator(rebuilt_root):
    ds = get_dataset("ogbg-molbbbp", root=rebuilt_root, download=False)
    y_true = ds.dataset.y[ds.split()["test"]]
    y_pred = torch.randn(len(y_true), 1, generator=torch.Generator().manual_seed(0))
    expected = Evaluator("ogbg-molbbbp").eval({"y_true": y_true, "y_pred": y_pred})["rocauc"]
    assert ds.evaluate(y_true, y_pred) == pytest.approx(expected)
    assert ds.evaluate(y_true, y_true.float()) == 1.0


def test_missing_dataset_offline_says_how_to_rebuild(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        get_dataset("ogbg-molbace", root=tmp_path, download=False)
    assert isinstance(error.value, FileNotFoundError)
    assert (f"plstm-graph data rebuild-ogb ogbg-molbace --csv ../shared/data/moleculenet/bace.csv.gz "
            f"--root {tmp_path}") in str(error.value)


def test_failed_download_says_how_to_rebuild_and_leaves_nothing(tmp_path, monkeypatch):
    def no_network(url, folder, log=True):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(ogb_module.ogb_url, "download_url", no_network)
    with pytest.raises(DatasetNotFoundError, match="rebuild-ogb ogbg-molhiv --csv .*hiv.csv.gz"):
        get_dataset("ogbg-molhiv", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="no MoleculeNet CSV"):
        get_dataset("ogbg-molpcba", root=tmp_path / "new")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def bace_copy(rebuilt_root, tmp_path):
    """A fresh, unprocessed copy of the rebuilt ogbg-molbace folder."""
    folder = tmp_path / "ogbg_molbace"
    shutil.copytree(rebuilt_root / "ogbg_molbace", folder, ignore=shutil.ignore_patterns("processed"))
    return folder


def test_missing_file_is_named(bace_copy):
    (bace_copy / "raw" / "node-feat.csv.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"raw/node-feat\.csv\.gz: missing"):
        get_dataset("ogbg-molbace", root=bace_copy.parent, download=False)


def test_truncated_file_is_named(bace_copy):
    path = bace_copy / "raw" / "edge-feat.csv.gz"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DatasetFileError, match=r"raw/edge-feat\.csv\.gz: not a readable gzip"):
        get_dataset("ogbg-molbace", root=bace_copy.parent, download=False)


def test_inconsistent_file_is_named(bace_copy):
    path = bace_copy / "raw" / "edge.csv.gz"
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join(lines[:-1]) + "\n").encode()))
    message = rf"raw/edge\.csv\.gz: {len(lines) - 1} rows, .* imply {len(lines)}"
    with pytest.raises(DatasetFileError, match=message):
        get_dataset("ogbg-molbace", root=bace_copy.parent, download=False)


def test_bad_split_file_is_named(bace_copy):
    (bace_copy / "split" / "scaffold" / "valid.csv.gz").write_bytes(gzip.compress(b"0\n99999\n"))
    message = r"split/scaffold/valid\.csv\.gz: indices must lie in 0\.\.1512"
    with pytest.raises(DatasetFileError, match=message):
        get_dataset("ogbg-molbace", root=bace_copy.parent, download=False)


def test_corrupt_processed_file_is_processed_again_with_a_warning(bace_copy):
    get_dataset("ogbg-molbace", root=bace_copy.parent, download=False)
    processed = bace_copy / "processed" / "geometric_data_processed.pt"
    processed.write_bytes(processed.read_bytes()[:1000])
    with pytest.warns(UserWarning, match=r"processed: cannot be loaded .*processing the raw files again"):
        ds = get_dataset("ogbg-molbace", root=bace_copy.parent, download=False)
    assert len(ds.dataset) == 1513
    processed.write_bytes(b"")  # what a kill during an older, non-atomic processing left
    with pytest.warns(UserWarning, match="cannot be loaded"):
        assert len(get_dataset("ogbg-molbace", root=bace_copy.parent, download=False).dataset) == 1513


def test_processing_killed_midway_leaves_no_processed_file(bace_copy, monkeypatch):
    real_save = torch.save

    def save_half_then_die(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        with open(path, "r+b") as file:
            file.truncate(100)
        raise KeyboardInterrupt  # stands for SIGKILL: nothing after this line runs

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", save_half_then_die)
        with pytest.raises(KeyboardInterrupt):
            get_dataset("ogbg-molbace", root=bace_copy.parent, download=False)
    processed = bace_copy / "processed"
    assert not (processed / "geometric_data_processed.pt").exists()
    assert [path.name for path in processed.iterdir()] == ["raw_fingerprint.txt"]  # no temporary file
    assert len(get_dataset("ogbg-molbace", root=bace_copy.parent, download=False).dataset) == 1513


def test_changed_raw_files_are_processed_again(bace_copy):
    ds = get_dataset("ogbg-molbace", root=bace_copy.parent, download=False)
    labels = bace_copy / "raw" / "graph-label.csv.gz"
    flipped = 1 - ds.dataset.y[:, 0]
    labels.write_bytes(gzip.compress("".join(f"{int(y)}\n" for y in flipped).encode()))
    with pytest.warns(UserWarning, match="raw files changed since they were processed"):
        ds = get_dataset("ogbg-molbace", root=bace_copy.parent, download=False)
    torch.testing.assert_close(ds.dataset.y[:, 0], flipped)
    # A corrupted raw file is named, never hidden behind the processed data of the old one.
    edges = bace_copy / "raw" / "edge-feat.csv.gz"
    edges.write_bytes(edges.read_bytes()[:500])
    with pytest.warns(UserWarning, match="raw files changed"), \
            pytest.raises(DatasetFileError, match=r"raw/edge-feat\.csv\.gz: not a readable gzip"):
        get_dataset("ogbg-molbace", root=bace_copy.parent, download=False)


def test_several_roots_are_searched_in_order(shared_data, rebuilt_root, tmp_path, monkeypatch):
    # TU raw files in the read-only shared folder, OGB folders rebuilt elsewhere: one root list.
    monkeypatch.setenv(ROOT_ENV, os.pathsep.join([str(shared_data), str(rebuilt_root)]))
    assert len(get_dataset("PTC_MR").dataset) == 344
    assert str(get_dataset("ogbg-molbbbp", download=False).dataset.root).startswith(str(rebuilt_root))
    # A missing dataset: rebuild into the writable root, never into the read-only one.
    monkeypatch.setenv(ROOT_ENV, os.pathsep.join([str(shared_data), str(tmp_path)]))
    with pytest.raises(DatasetNotFoundError, match=rf"--root {tmp_path}\n") as error:
        get_dataset("ogbg-molhiv", download=False)
    assert f"--root {shared_data}" not in str(error.value)
    # Only read-only roots: the hint names a writable folder and how to add it to the list.
    with pytest.raises(DatasetNotFoundError) as error:
        get_dataset("ogbg-molhiv", root=shared_data, download=False)
    assert f"--root {shared_data}" not in str(error.value)
    assert f"--data-root {shared_data}{os.pathsep}" in str(error.value)


def test_a_missing_root_is_named_and_not_created(tmp_path, monkeypatch):
    def no_network(url, folder, log=True):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(ogb_module.ogb_url, "download_url", no_network)
    root = tmp_path / "no" / "such"
    with pytest.raises(DatasetNotFoundError, match=rf"data roots \({root} \(does not exist\)\)"):
        get_dataset("ogbg-molbace", root=root)
    with pytest.raises(DatasetNotFoundError, match=r"\(does not exist\)"):
        get_dataset("ogbg-molbace", root=root, download=False)
    assert list(tmp_path.iterdir()) == []


def test_labels_match_the_mapping(rebuilt_root):
    ds = get_dataset("ogbg-molbace", root=rebuilt_root, download=False)
    mapping = pd.read_csv(rebuilt_root / "ogbg_molbace" / "mapping" / "mol.csv.gz")
    np.testing.assert_array_equal(ds.dataset.y[:, 0].numpy(), mapping["Class"].to_numpy())
