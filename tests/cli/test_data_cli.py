import os
import urllib.error

import pandas as pd
import pytest

from plstm_graph.cli import main
from plstm_graph.data import dataset_names
from plstm_graph.data import ogb as ogb_module
from plstm_graph.data.root import CACHE_ENV


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture
def bace_csv(shared_data, tmp_path):
    path = tmp_path / "bace.csv"
    pd.read_csv(shared_data / "moleculenet" / "bace.csv.gz").iloc[:80].to_csv(path, index=False)
    return path


def test_list_shows_every_dataset_and_where_it_is(shared_data, capsys):
    assert main(["data", "list", "--data-root", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert f"data root: {shared_data}" in out
    assert [line.split()[0] for line in out.splitlines()[2:]] == dataset_names()
    assert str(shared_data / "tu" / "NCI1" / "raw") in out
    assert "missing: download, or rebuild-ogb" in out and "embedded (default)" in out


def test_rebuild_then_info(shared_data, tmp_path, capsys):
    root = tmp_path / "root"
    args = ["data", "rebuild-ogb", "ogbg-molbace", "--csv", str(shared_data / "moleculenet" / "bace.csv.gz"),
            "--root", str(root), "--limit", "80"]
    assert main(args) == 0
    assert f"wrote {root / 'ogbg_molbace'}: 80 molecules, scaffold split train" in capsys.readouterr().out
    assert main(args) == 2
    assert "exists; pass overwrite=True (--overwrite)" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    capsys.readouterr()
    assert main(["data", "info", "ogbg-molbace", "--data-root", str(root), "--no-download"]) == 0
    out = capsys.readouterr().out
    assert ("ogbg-molbace: 80 graphs, binary classification with 1 task(s), metric rocauc "
            "(higher is better)") in out
    assert "features: ogb (node 9, edge 3)" in out


def test_errors_are_one_line_with_exit_code_2(bace_csv, tmp_path, capsys):
    assert main(["data", "info", "ogbg-molbbbp", "--data-root", str(tmp_path), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "plstm-graph data rebuild-ogb ogbg-molbbbp --csv ../shared/data/moleculenet/bbbp.csv.gz" in err
    frame = pd.read_csv(bace_csv)
    frame.loc[10, "mol"] = "C1CC[("
    frame.to_csv(bace_csv, index=False)
    assert main(["data", "rebuild-ogb", "ogbg-molbace", "--csv", str(bace_csv), "--root", str(tmp_path),
                 "--force"]) == 2
    assert "row 10 (line 12): 'C1CC[('" in capsys.readouterr().err
    assert main(["data", "info", "MUTAG", "--data-root", str(tmp_path), "--fold", "3", "--no-download"]) == 2


def test_info_on_a_tu_fold(shared_data, capsys):
    assert main(["data", "info", "MUTAG", "--data-root", str(shared_data), "--fold", "2"]) == 0
    out = capsys.readouterr().out
    assert "MUTAG: 188 graphs, multiclass classification with 2 classes, metric acc" in out
    assert "fold 2 of 10: train 150, valid 19, test 19" in out


def test_rebuild_refuses_the_csv_of_another_dataset(shared_data, tmp_path, capsys):
    root = tmp_path / "root"
    bbbp = shared_data / "moleculenet" / "bbbp.csv.gz"
    assert main(["data", "rebuild-ogb", "ogbg-molbace", "--csv", str(bbbp), "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"plstm-graph data rebuild-ogb: error: {bbbp}: label column 'p_np' is not ogbg-molbace's")
    assert "it looks like ogbg-molbbbp's CSV" in err and "--force" in err
    header_only = tmp_path / "header.csv"
    header_only.write_text("mol,Class\n")
    assert main(["data", "rebuild-ogb", "ogbg-molbace", "--csv", str(header_only), "--root", str(root)]) == 2
    assert f"error: {header_only}: no data rows" in capsys.readouterr().err
    assert not root.exists()


def test_missing_data_root_is_named_and_not_created(tmp_path, monkeypatch, capsys):
    def no_network(url, folder, log=True):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(ogb_module.ogb_url, "download_url", no_network)
    root = tmp_path / "typo" / "datasets"
    assert main(["data", "info", "ogbg-molbace", "--data-root", str(root)]) == 2
    assert f"data roots ({root} (does not exist))" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


def test_list_searches_several_roots(shared_data, tmp_path, capsys):
    roots = os.pathsep.join([str(shared_data), str(tmp_path / "none")])
    assert main(["data", "list", "--data-root", roots]) == 0
    out = capsys.readouterr().out
    assert f"data root: {shared_data}{os.pathsep}{tmp_path / 'none'} (does not exist)" in out
    assert str(shared_data / "tu" / "MUTAG" / "raw") in out
