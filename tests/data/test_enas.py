import gzip
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from plstm_graph.data import DatasetFileError, DatasetNotFoundError, enas_graph, get_dataset, load_enas
from plstm_graph.data.enas import VERTEX_TYPES, dvae_split

LINES = 20020


@pytest.fixture(scope="module")
def enas(shared_data):
    return get_dataset("enas", root=shared_data, download=False)


@pytest.fixture(scope="module")
def lines(shared_data):
    with gzip.open(shared_data / "dags" / "final_structures6.txt.gz", "rt") as file:
        return file.read().splitlines()


def test_counts_and_dvae_split(enas, lines):
    assert len(enas) == len(lines) == LINES
    split = enas.split()
    assert {key: len(value) for key, value in split.items()} == {"train": 15216, "valid": 1902, "test": 1902}
    covered = torch.cat(list(split.values())).sort().values
    assert torch.equal(covered, torch.arange(1000, LINES))  # burn-in left out, no overlap
    # D-VAE's load_ENAS_graphs: skip 1000 lines, random.Random(0).shuffle the graph list, 90 / 10.
    shuffled = lines[1000:]
    random.Random(0).shuffle(shuffled)
    assert int(0.9 * len(shuffled)) == 17118
    assert sorted(shuffled[17118:]) == sorted(lines[i] for i in split["test"].tolist())
    dvae_train = torch.cat([split["train"], split["valid"]]).tolist()
    assert sorted(shuffled[:17118]) == sorted(lines[i] for i in dvae_train)


def test_hand_checked_dags(enas, lines):
    assert lines[0].startswith("[[1], [4, 0], [5, 0, 0], [0, 1, 1, 1], [2, 1, 1, 1, 1], [3, 0, 0, 0, 0, 1]]")
    graph = enas.dataset[0]
    assert graph.x.argmax(1).tolist() == [0, 3, 6, 7, 2, 4, 5, 1]  # input, types + 2, output
    assert [VERTEX_TYPES[t] for t in graph.x.argmax(1).tolist()] == [
        "input", "sep3", "avg3", "max3", "conv3", "conv5", "sep5", "output"]
    assert graph.x.sum(1).tolist() == [1.0] * 8
    edges = set(map(tuple, graph.edge_index.t().tolist()))
    assert edges == {(0, 1), (1, 2), (2, 3), (0, 4), (1, 4), (2, 4), (3, 4),
                     (0, 5), (1, 5), (2, 5), (3, 5), (4, 5), (4, 6), (5, 6), (6, 7)}
    assert graph.y.item() == pytest.approx(0.7302)
    assert lines[2].startswith("[[1], [1, 1], [5, 1, 0], [4, 1, 0, 0], [4, 0, 1, 1, 1], [2, 1, 0, 1, 0, 1]]")
    graph = enas.dataset[2]
    assert graph.x.argmax(1).tolist() == [0, 3, 3, 7, 6, 6, 4, 1]
    assert set(map(tuple, graph.edge_index.t().tolist())) == {
        (0, 1), (0, 2), (1, 2), (0, 3), (2, 3), (0, 4), (3, 4), (1, 5), (2, 5), (3, 5), (4, 5),
        (0, 6), (2, 6), (4, 6), (5, 6), (6, 7)}


def test_given_orientation_input_to_output(enas):
    assert enas.orientation == "given" and enas.task_level == "graph" and enas.features == "onehot"
    source, target = enas.dataset._data.edge_index  # as stored: every graph's own node ids
    assert bool((source < target).all())  # vertices are in topological order, input first
    assert not bool((target == 0).any()) and not bool((source == 7).any())
    # Only vertex 6 lacks a successor among the layers, so it alone feeds the output (as D-VAE).
    assert int((target == 7).sum()) == LINES and bool((source[target == 7] == 6).all())
    assert enas.num_node_features == 8 and enas.num_edge_features == 0


def test_metrics_rmse_and_pearson(enas):
    assert (enas.metric, enas.extra_metrics, enas.higher_is_better) == ("rmse", ("pearson",), False)
    y = enas.dataset.y[enas.split()["test"]]
    noisy = y + 0.001 * torch.randn(y.shape, generator=torch.Generator().manual_seed(0), dtype=y.dtype)
    assert enas.evaluate(y, noisy) == pytest.approx(float((y - noisy).pow(2).mean().sqrt()), rel=1e-5)
    expected = np.corrcoef(y.view(-1).numpy(), noisy.view(-1).numpy())[0, 1]
    assert enas.evaluate_metric("pearson", y, noisy) == pytest.approx(expected)


def test_split_needs_graphs_after_the_burn_in():
    assert {key: len(value) for key, value in dvae_split(1020).items()} == {"train": 16, "valid": 2, "test": 2}
    with pytest.raises(ValueError, match="num_graphs: 1000 graphs leave too few after the burn-in of 1000"):
        dvae_split(1000)


def test_single_graph_and_malformed_rows():
    graph = enas_graph([[5], [0, 1]], accuracy=0.5)
    assert graph.x.argmax(1).tolist() == [0, 7, 2, 1]
    assert graph.edge_index.tolist() == [[0, 0, 1, 2], [1, 2, 2, 3]] and graph.y.tolist() == [[0.5]]
    with pytest.raises(ValueError, match="row 0 must have 2 layers"):
        enas_graph([[5], [0]])
    with pytest.raises(ValueError, match=r"types in 0..5 and 0/1 skip bits, got \[\[6\], \[0, 1\]\]"):
        enas_graph([[6], [0, 1]])
    with pytest.raises(ValueError, match="types in 0..5 and 0/1 skip bits"):
        enas_graph([[5], [0, 2]])


def test_plain_file_in_the_download_location_and_cache_key(tmp_path, lines):
    path = tmp_path / "dags" / "final_structures6.txt"
    path.parent.mkdir()
    path.write_text("\n".join(lines[:1100]) + "\n")
    small = load_enas(tmp_path, download=False)
    assert len(small) == 1100
    assert {key: len(value) for key, value in small.split().items()} == {"train": 80, "valid": 10, "test": 10}
    path.write_text("\n".join(lines[1:1101]) + "\n")  # same size, new content: a new cache
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert torch.equal(load_enas(tmp_path, download=False).dataset[0].x, small.dataset[1].x)
    path.write_text(lines[0] + "\n[[1], [7, 0]], 0.5\n")
    with pytest.raises(DatasetFileError,
                       match=r"final_structures6.txt: rows: row 1 must have 6 layers.*row k is line k \+ 1"):
        load_enas(tmp_path, download=False)
    path.write_text("[[1], oops\n")
    with pytest.raises(DatasetFileError, match="line 1 is not"):
        load_enas(tmp_path, download=False)


def test_missing_file_says_where_it_belongs(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"enas: not found; put .*dags/final_structures6.txt"):
        load_enas(tmp_path, download=False)


def test_download_into_the_first_writable_root(tmp_path, monkeypatch, lines):
    def fake_download(url, folder, log=True):  # what torch_geometric's download_url does, offline
        assert url.startswith("https://raw.githubusercontent.com/muhanzhang/D-VAE/3569a4a")
        path = Path(folder) / url.rsplit("/", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines[:1100]) + "\n")
        return str(path)

    monkeypatch.setattr("plstm_graph.data.enas.download_url", fake_download)
    assert len(load_enas(tmp_path)) == 1100
    placed = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*"))
    assert placed == ["dags", "dags/final_structures6.txt"]
