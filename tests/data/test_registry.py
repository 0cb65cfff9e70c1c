import pytest

from plstm_graph.data import dataset_names, get_dataset
from plstm_graph.data.root import ROOT_ENV, data_root, default_root


def test_names_are_sorted_and_complete():
    names = dataset_names()
    assert names == sorted(names)
    ogb = {"ogbg-molhiv", "ogbg-molbace", "ogbg-molbbbp", "ogbg-moltox21", "ogbg-molclintox", "ogbg-molsider",
           "ogbg-molesol", "ogbg-molfreesolv", "ogbg-mollipo", "ogbg-moltoxcast", "ogbg-molpcba"}
    assert set(names) >= ogb | {"MUTAG", "PTC_MR", "PROTEINS", "NCI1", "tpsa", "enas", "sst", "sst-binary"}


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"name: unknown dataset 'mutag'; valid names: MUTAG, NCI1, .*tpsa"):
        get_dataset("mutag")


def test_data_root_argument_then_environment_then_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv(ROOT_ENV)
    assert data_root() == default_root()
    assert default_root().name == "datasets" and (default_root() / "README.md").is_file()
    with pytest.raises(ValueError, match="root: expected a folder path"):
        data_root("")


def test_environment_root_reaches_the_loaders(monkeypatch, shared_data):
    monkeypatch.setenv(ROOT_ENV, str(shared_data))
    assert len(get_dataset("PTC_MR").dataset) == 344
    assert len(get_dataset("enas", download=False)) == 20020
