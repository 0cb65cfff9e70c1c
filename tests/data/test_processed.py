import pytest
import torch

from plstm_graph.data import DatasetNotFoundError
from plstm_graph.data.processed import find_sources, stored_graphs

LAYOUTS = (["a/one.txt", "a/two.txt"], ["b/both.txt"])


def test_layouts_gzip_and_download(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "both.txt.gz").write_bytes(b"")
    assert find_sources("x", LAYOUTS, tmp_path) == [tmp_path / "b" / "both.txt.gz"]

    def fetch(folder):  # writes the first layout, plus a file that is not wanted
        (folder / "a").mkdir()
        for name in ("one.txt", "two.txt", "junk.zip"):
            (folder / "a" / name).write_text(name)

    root = tmp_path / "root"
    assert find_sources("x", LAYOUTS, root, fetch) == [root / "a" / "one.txt", root / "a" / "two.txt"]
    assert sorted(path.name for path in root.rglob("*")) == ["a", "one.txt", "two.txt"]
    assert find_sources("x", LAYOUTS, root) == [root / "a" / "one.txt", root / "a" / "two.txt"]


def test_failed_download_leaves_nothing_behind(tmp_path):
    def fetch(folder):
        (folder / "a").mkdir()
        (folder / "a" / "one.txt").write_text("half")
        raise OSError("network unreachable")

    with pytest.raises(DatasetNotFoundError, match=r"x: not found; put a/one.txt, a/two.txt or b/both.txt "
                                                   r".*in a data root .*download failed \(network unreachable\)"):
        find_sources("x", LAYOUTS, tmp_path, fetch)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatasetNotFoundError, match=r"download failed \(it did not give"):
        find_sources("x", LAYOUTS, tmp_path, lambda folder: None)
    with pytest.raises(DatasetNotFoundError, match=r"x: not found; put .*b/both.txt \(each may be gzipped\)"):
        find_sources("x", LAYOUTS, tmp_path)


def test_stored_graphs_checks_rows():
    data, slices = stored_graphs(torch.tensor([2, 1]), torch.tensor([1, 0]), graph_attrs=("y",),
                                 x=torch.zeros(3, 4), edge_index=torch.tensor([[1], [0]]), y=torch.zeros(2, 1))
    assert {key: value.tolist() for key, value in slices.items()} == {"x": [0, 2, 3], "edge_index": [0, 1, 1],
                                                                       "y": [0, 1, 2]}
    with pytest.raises(ValueError, match=r"y: expected 3 rows \(one per node\), got 2"):
        stored_graphs(torch.tensor([2, 1]), torch.tensor([1, 0]), y=torch.zeros(2))
