import pytest

from plstm_graph.data import rebuild_ogb
from plstm_graph.data.root import CACHE_ENV


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory):
    """Processed files of these tests go to a fresh cache, never to datasets/ or the raw folders."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("cache")
        patch.setenv(CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="session")
def rebuilt_root(shared_data, tmp_path_factory):
    """A data root holding ogbg-molbace and ogbg-molbbbp rebuilt from the MoleculeNet CSVs."""
    root = tmp_path_factory.mktemp("rebuilt")
    for name, csv in (("ogbg-molbace", "bace"), ("ogbg-molbbbp", "bbbp")):
        rebuild_ogb(name, shared_data / "moleculenet" / f"{csv}.csv.gz", root)
    return root


@pytest.fixture(autouse=True)
def no_prompt(monkeypatch):
    """ogb asks interactive questions through input(); none may ever be asked."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"interactive prompt: {args}")
    monkeypatch.setattr("builtins.input", refuse)
