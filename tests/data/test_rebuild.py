import gzip
import os
import socket
import subprocess

import numpy as np
import pandas as pd
import pytest

from plstm_graph.data import DatasetFileError, get_dataset, rebuild_ogb
from plstm_graph.data import rebuild as rebuild_module
from plstm_graph.data.ogb import SPLIT_PARTS

OGB_FILES = ["raw/edge.csv.gz", "raw/edge-feat.csv.gz", "raw/node-feat.csv.gz", "raw/num-node-list.csv.gz",
             "raw/num-edge-list.csv.gz", "raw/graph-label.csv.gz"] + [
             f"split/scaffold/{part}.csv.gz" for part in SPLIT_PARTS]


@pytest.mark.parametrize("folder", ["ogbg_molbace", "ogbg_molbbbp"])
@pytest.mark.parametrize("file", OGB_FILES)
def test_rebuild_equals_ogb_byte_for_byte(rebuilt_root, shared_data, folder, file):
    ours = (rebuilt_root / folder / file).read_bytes()
    theirs = (shared_data / "ogb_reference" / folder / file).read_bytes()
    assert gzip.decompress(ours) == gzip.decompress(theirs)
    # The gzip streams too, apart from the 4-byte timestamp (bytes 4..7 of the header).
    assert ours[:4] + ours[8:] == theirs[:4] + theirs[8:]


@pytest.mark.parametrize("folder", ["ogbg_molbace", "ogbg_molbbbp"])
def test_mapping_has_ogbs_labels_and_smiles(rebuilt_root, shared_data, folder):
    ours = pd.read_csv(rebuilt_root / folder / "mapping" / "mol.csv.gz")
    theirs = pd.read_csv(shared_data / "ogb_reference" / folder / "mapping" / "mol.csv.gz")
    assert list(ours.columns) == list(theirs.columns)
    pd.testing.assert_frame_equal(ours.drop(columns="mol_id"), theirs.drop(columns="mol_id"))
    assert (rebuilt_root / folder / "RELEASE_v1.txt").is_file()


def test_ogb_loads_the_rebuilt_folder_offline(rebuilt_root, shared_data):
    ds = get_dataset("ogbg-molbbbp", root=rebuilt_root, download=False)
    assert len(ds.dataset) == 2039 and ds.task_type == "binary classification" and ds.metric == "rocauc"
    edges = pd.read_csv(shared_data / "ogb_reference/ogbg_molbbbp/raw/edge.csv.gz", header=None).to_numpy()
    nodes = pd.read_csv(shared_data / "ogb_reference/ogbg_molbbbp/raw/num-node-list.csv.gz", header=None)[0]
    graph = ds.dataset[1]
    offset = int(pd.read_csv(shared_data / "ogb_reference/ogbg_molbbbp/raw/num-edge-list.csv.gz",
                             header=None)[0][0])
    assert graph.num_nodes == nodes[1]
    # ogb adds each stored edge's reverse right after it.
    stored = edges[offset:offset + graph.num_edges // 2]
    np.testing.assert_array_equal(graph.edge_index[:, ::2].T.numpy(), stored)
    np.testing.assert_array_equal(graph.edge_index[:, 1::2].numpy(), graph.edge_index[[1, 0], ::2].numpy())
    reference = {part: pd.read_csv(shared_data / f"ogb_reference/ogbg_molbbbp/split/scaffold/{part}.csv.gz",
                                   header=None)[0].to_numpy() for part in SPLIT_PARTS}
    for part, index in ds.split().items():
        np.testing.assert_array_equal(index.numpy(), reference[part])


def write_csv(path, smiles, labels, column="Class"):
    pd.DataFrame({"mol": smiles, column: labels}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def bace_slice(shared_data):
    frame = pd.read_csv(shared_data / "moleculenet" / "bace.csv.gz").iloc[:60]
    return list(frame["mol"]), list(frame["Class"])


def test_whitespace_in_smiles_does_not_change_the_files(tmp_path, bace_slice):
    smiles, labels = bace_slice
    padded = [f" {s}  " if i % 2 else f"{s}\t" for i, s in enumerate(smiles)]
    clean = rebuild_ogb("ogbg-molbace", write_csv(tmp_path / "clean.csv", smiles, labels), tmp_path / "a",
                        force=True)
    spaced = rebuild_ogb("ogbg-molbace", write_csv(tmp_path / "spaced.csv", padded, labels), tmp_path / "b",
                         force=True)
    for file in OGB_FILES + ["mapping/mol.csv.gz"]:
        assert (clean.folder / file).read_bytes() == (spaced.folder / file).read_bytes(), file


def test_missing_labels_are_empty_fields_read_back_as_nan(tmp_path, bace_slice):
    smiles, labels = bace_slice
    labels = [np.nan if i % 7 == 3 else value for i, value in enumerate(labels)]
    report = rebuild_ogb("ogbg-molbace", write_csv(tmp_path / "gaps.csv", smiles, labels), tmp_path, force=True)
    lines = gzip.decompress((report.folder / "raw/graph-label.csv.gz").read_bytes()).decode().splitlines()
    # An empty field; pandas quotes it when it is the whole line, or read_csv would skip the line.
    assert lines[3] == '""' and lines[0] in ("0.0", "1.0")
    y = get_dataset("ogbg-molbace", root=tmp_path, download=False).dataset.y
    assert y.dtype.is_floating_point and y.shape == (60, 1)
    np.testing.assert_array_equal(np.isnan(y[:, 0].numpy()), np.isnan(labels))


def test_bad_smiles_names_its_row_and_nothing_is_written(tmp_path, bace_slice):
    smiles, labels = bace_slice
    smiles = smiles[:5] + ["C1CC(", "CCO"] + smiles[7:]
    with pytest.raises(ValueError, match=r"row 5 \(line 7\): 'C1CC\('"):
        rebuild_ogb("ogbg-molbace", write_csv(tmp_path / "bad.csv", smiles, labels), tmp_path / "root",
                    force=True)
    assert not (tmp_path / "root").exists()


def test_wrong_task_count_and_names_are_rejected(tmp_path, bace_slice, shared_data):
    smiles, labels = bace_slice
    with pytest.raises(ValueError, match="ogbg-molclintox has 2 task"):
        rebuild_ogb("ogbg-molclintox", write_csv(tmp_path / "one.csv", smiles, labels), tmp_path)
    with pytest.raises(ValueError, match="name: expected one of"):
        rebuild_ogb("ogbg-molnope", tmp_path / "one.csv", tmp_path)
    with pytest.raises(ValueError, match="download-only"):
        rebuild_ogb("ogbg-molpcba", tmp_path / "one.csv", tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        rebuild_ogb("ogbg-molbace", tmp_path / "nowhere.csv", tmp_path)


def test_interrupted_rebuild_leaves_no_dataset_folder(tmp_path, bace_slice, monkeypatch):
    smiles, labels = bace_slice
    csv = write_csv(tmp_path / "bace.csv", smiles, labels)
    root = tmp_path / "root"
    real_write = rebuild_module.write_gz
    calls = []

    def write_then_fail(path, text):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt  # e.g. Ctrl-C halfway through the raw files
        real_write(path, text)

    monkeypatch.setattr(rebuild_module, "write_gz", write_then_fail)
    with pytest.raises(KeyboardInterrupt):
        rebuild_ogb("ogbg-molbace", csv, root, force=True)
    assert not root.exists()  # no dataset folder, no staging folder, and no new empty root


def test_overwrite_replaces_and_a_failed_overwrite_keeps_the_old_folder(tmp_path, bace_slice, monkeypatch):
    smiles, labels = bace_slice
    first = rebuild_ogb("ogbg-molbace", write_csv(tmp_path / "a.csv", smiles[:30], labels[:30]), tmp_path,
                        force=True)
    csv = write_csv(tmp_path / "b.csv", smiles, labels)
    with pytest.raises(FileExistsError, match="--overwrite"):
        rebuild_ogb("ogbg-molbace", csv, tmp_path, force=True)

    def fail(*args):
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(rebuild_module, "write_gz", fail)
        with pytest.raises(OSError, match="disk full"):
            rebuild_ogb("ogbg-molbace", csv, tmp_path, overwrite=True, force=True)
    assert (first.folder / "raw/num-node-list.csv.gz").is_file()
    assert len(gzip.decompress((first.folder / "raw/num-node-list.csv.gz").read_bytes()).splitlines()) == 30

    second = rebuild_ogb("ogbg-molbace", csv, tmp_path, overwrite=True, force=True)
    assert second.num_graphs == 60 and second.folder == first.folder
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["ogbg_molbace"]


@pytest.mark.slow
def test_hiv_rebuild_keeps_all_molecules_with_ogbs_split_sizes(shared_data, tmp_path):
    report = rebuild_ogb("ogbg-molhiv", shared_data / "moleculenet" / "hiv.csv.gz", tmp_path)
    assert report.num_graphs == 41127
    assert report.split_sizes == {"train": 32901, "valid": 4113, "test": 4113}
    # The 7 SMILES (Al, B, Ge complexes) that rdkit >= 2024.9 rejects for valence are kept in place.
    assert report.partially_sanitized == [137, 987, 12882, 18293, 30784, 30785, 35728]
    num_nodes = pd.read_csv(report.folder / "raw/num-node-list.csv.gz", header=None)[0]
    assert len(num_nodes) == 41127 and (num_nodes > 0).all()
    split = {part: pd.read_csv(report.folder / f"split/scaffold/{part}.csv.gz", header=None)[0].to_numpy()
             for part in SPLIT_PARTS}
    np.testing.assert_array_equal(np.sort(np.concatenate(list(split.values()))), np.arange(41127))


def test_csv_of_another_dataset_is_refused(shared_data, tmp_path):
    root = tmp_path / "root"
    message = r"bbbp\.csv\.gz: label column 'p_np' is not ogbg-molbace's \('Class'\); it looks like ogbg-molbbbp's"
    with pytest.raises(ValueError, match=message):
        rebuild_ogb("ogbg-molbace", shared_data / "moleculenet" / "bbbp.csv.gz", root)
    # The right columns but other molecules: OGB's indices and split would not be OGB's.
    pd.read_csv(shared_data / "moleculenet" / "bace.csv.gz").iloc[:1500].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(ValueError, match=r"1500 molecules, but ogbg-molbace has 1513.*--force"):
        rebuild_ogb("ogbg-molbace", tmp_path / "short.csv", root)
    assert not root.exists()


def test_header_only_csv_is_named(tmp_path):
    (tmp_path / "empty.csv").write_text("mol,Class\n")
    with pytest.raises(DatasetFileError, match=r"empty\.csv: no data rows \(only a header: \['mol', 'Class'\]\)"):
        rebuild_ogb("ogbg-molbace", tmp_path / "empty.csv", tmp_path / "root")


def test_limit_keeps_the_first_molecules(shared_data, tmp_path):
    report = rebuild_ogb("ogbg-molbace", shared_data / "moleculenet" / "bace.csv.gz", tmp_path, limit=25)
    assert report.num_graphs == 25
    ours = gzip.decompress((report.folder / "raw/num-node-list.csv.gz").read_bytes()).splitlines()
    theirs = gzip.decompress((shared_data / "ogb_reference/ogbg_molbace/raw/num-node-list.csv.gz").read_bytes())
    assert ours == theirs.splitlines()[:25]
    with pytest.raises(ValueError, match="limit must be a positive integer, got 0"):
        rebuild_ogb("ogbg-molbace", shared_data / "moleculenet" / "bace.csv.gz", tmp_path / "b", limit=0)


def dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_killed_overwrite_is_undone_and_its_leftovers_removed(tmp_path, bace_slice):
    smiles, labels = bace_slice
    csv, root = write_csv(tmp_path / "bace.csv", smiles, labels), tmp_path / "root"
    first = rebuild_ogb("ogbg-molbace", csv, root, force=True)
    # What `rebuild-ogb --overwrite` killed between its two renames leaves: its staging folder,
    # and the old folder moved aside. A running rebuild's staging folder must be left alone.
    owner = f"{socket.gethostname().replace('.', '_')}.{dead_pid()}"
    (root / f".ogbg_molbace.{owner}.x1.tmp" / "raw").mkdir(parents=True)
    aside = root / f".ogbg_molbace.{owner}.x2.old"
    aside.mkdir()
    os.replace(first.folder, aside / "ogbg_molbace")
    running = root / f".ogbg_molbace.{socket.gethostname().replace('.', '_')}.{os.getpid()}.x3.tmp"
    running.mkdir()
    with pytest.raises(FileExistsError, match="--overwrite"):  # the old folder is back in place
        rebuild_ogb("ogbg-molbace", csv, root, force=True)
    assert len(get_dataset("ogbg-molbace", root=root, download=False).dataset) == 60
    rebuild_ogb("ogbg-molbace", csv, root, force=True, overwrite=True)
    assert sorted(path.name for path in root.iterdir()) == sorted([running.name, "ogbg_molbace"])


def test_rebuild_goes_to_the_first_writable_root(shared_data, tmp_path, bace_slice):
    smiles, labels = bace_slice
    csv = write_csv(tmp_path / "bace.csv", smiles, labels)
    report = rebuild_ogb("ogbg-molbace", csv, os.pathsep.join([str(shared_data), str(tmp_path / "mine")]),
                         force=True)
    assert report.folder == tmp_path / "mine" / "ogbg_molbace"
    with pytest.raises(ValueError, match=rf"root: no writable folder among {shared_data}; pass a writable "
                                         rf"one, e.g. --root /"):
        rebuild_ogb("ogbg-molbace", csv, shared_data, force=True)
