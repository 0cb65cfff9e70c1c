import gzip
import os
import re
import zipfile
from pathlib import Path

import pytest
import torch

from plstm_graph.data import DatasetFileError, DatasetNotFoundError, get_dataset, load_sst, parse_tree

SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def sst(shared_data):
    return get_dataset("sst", root=shared_data, download=False)


@pytest.fixture(scope="module")
def sst_binary(shared_data):
    return get_dataset("sst-binary", root=shared_data, download=False)


@pytest.fixture(scope="module")
def lines(shared_data):
    """The standard train / dev / test sentences: the shared train file is train + dev."""
    read = {part: gzip.open(shared_data / "trees" / f"sst_{part}.txt.gz", "rt").read().splitlines()
            for part in ("train", "dev", "test")}
    assert read["train"][-len(read["dev"]):] == read["dev"]
    return {"train": read["train"][:-len(read["dev"])], "valid": read["dev"], "test": read["test"]}


def nodes_of(dataset, indices):
    return int(dataset.dataset.slices["x"][indices + 1].sub(dataset.dataset.slices["x"][indices]).sum())


def test_counts(sst, sst_binary, lines):
    assert {key: len(value) for key, value in sst.split().items()} == {"train": 8544, "valid": 1101, "test": 2210}
    assert {key: len(value) for key, value in sst_binary.split().items()} == {"train": 6920, "valid": 872,
                                                                             "test": 1821}
    for name in SPLITS:  # one node per "(" of the file's lines
        assert nodes_of(sst, sst.split()[name]) == sum(line.count("(") for line in lines[name])
    binary_lines = [line for line in lines["test"] if not line.startswith("(2 ")]
    assert nodes_of(sst_binary, sst_binary.split()["test"]) == sum(line.count("(") for line in binary_lines)
    labelled = int((sst_binary.dataset.y[:nodes_of(sst_binary, sst_binary.split()["train"])] >= 0).sum())
    train_binary = [line for line in lines["train"] if not line.startswith("(2 ")]
    assert labelled == sum(len(re.findall(r"\([0134] ", line)) for line in train_binary)
    assert sst.num_tasks == 5 and sst_binary.num_tasks == 2


def test_hand_checked_tree(sst, sst_binary):
    index = sst.dataset.sentences.index("See it .")  # (4 (3 (2 See) (2 it)) (2 .))
    graph = sst.dataset[index]
    assert graph.y.tolist() == [4, 3, 2, 2, 2]
    assert graph.edge_index.tolist() == [[1, 2, 3, 4], [0, 1, 1, 0]]  # child -> parent
    assert graph.root_mask.tolist() == [True, False, False, False, False]
    words = [sst.vocabulary[i] for i in graph.x.view(-1).tolist()]
    assert words == ["", "", "See", "it", "."] and graph.x[:2].view(-1).tolist() == [0, 0]
    binary = sst_binary.dataset[sst_binary.dataset.sentences.index("See it .")]
    assert binary.y.tolist() == [1, 1, -1, -1, -1]
    assert torch.equal(binary.x, graph.x)  # one vocabulary for both tasks
    neutral_root = sst.dataset.sentences.index("Chomp chomp !")  # (2 (2 Chomp) (2 (2 chomp) (2 !)))
    assert sst.dataset[neutral_root].y[0] == 2 and "Chomp chomp !" not in sst_binary.dataset.sentences


def test_given_orientation_child_to_parent(sst):
    assert (sst.orientation, sst.task_level, sst.features) == ("given", "node", "tokens")
    child, parent = sst.dataset._data.edge_index  # as stored: every graph's own node ids
    assert bool((child > parent).all())  # pre-order: the edges run against the index order
    sizes = sst.dataset.slices["x"].diff()
    assert child.numel() == int(sizes.sum()) - len(sizes)  # a tree: one outgoing edge per non-root
    roots = sst.dataset._data.root_mask
    assert int(roots.sum()) == len(sst) and bool(roots[sst.dataset.slices["x"][:-1]].all())


def test_vocabulary_from_training_sentences_only(sst, lines):
    train_words = {word for line in lines["train"] for word in re.findall(r"\(\d ([^()]+)\)", line)}
    vocabulary = sst.vocabulary
    assert vocabulary[:2] == ["", "<unk>"] and set(vocabulary[2:]) == train_words
    assert len(vocabulary) == sst.num_node_features == len(train_words) + 2
    test_only = {word for line in lines["test"] for word in re.findall(r"\(\d ([^()]+)\)", line)} - train_words
    index = next(i for i, s in enumerate(sst.dataset.sentences) if i >= 9645 and set(s.split()) & test_only)
    graph, words = sst.dataset[index], [w for w in sst.dataset.sentences[index].split()]
    leaf_ids = graph.x.view(-1)[graph.x.view(-1) > 0].tolist()
    assert [word_id == 1 for word_id in leaf_ids] == [word in test_only for word in words]


def test_node_level_evaluation(sst):
    graphs = [sst.dataset[i] for i in range(3)]
    y = torch.cat([graph.y for graph in graphs])
    roots = torch.cat([graph.root_mask for graph in graphs])
    logits = torch.nn.functional.one_hot(y, 5).float()
    logits[roots.nonzero()[0]] = torch.nn.functional.one_hot((y[roots][0] + 1) % 5, 5).float()  # 1 root wrong
    assert sst.evaluate(y, logits, mask=roots) == pytest.approx(2 / 3)
    assert sst.evaluate_metric("acc_all_nodes", y, logits, mask=roots) == pytest.approx(1 - 1 / y.numel())
    with pytest.raises(ValueError, match="mask: sst scores 'acc' on the nodes of data.root_mask"):
        sst.evaluate(y, logits)


def test_parser_checks_and_deep_trees():
    tree = parse_tree("(3 (2 It) (4 (2 's) (3 lovely)))")
    assert tree.labels == [3, 2, 4, 2, 3] and tree.parents == [-1, 0, 0, 2, 2]
    assert tree.words == ["", "It", "", "'s", "lovely"] and tree.sentence == "It 's lovely"
    assert parse_tree("(2 8\xa01\\/2)").words == ["8\xa01\\/2"]  # a non-breaking space is no separator
    depth = 5000  # far beyond Python's recursion limit
    deep = parse_tree("(1 " * depth + "(0 x)" + ")" * depth)
    assert deep.parents == list(range(-1, depth)) and deep.words[-1] == "x"
    for bad, message in [("(2 (1 a)", "unbalanced '\\('"), ("(2 a))", "unbalanced '\\)'"),
                         ("(7 a)", "label 0..4"), ("(2 a (1 b))", "both a word and children"),
                         ("(2 a) (1 b)", "more than one root"), ("(2 (1 a) b)", "unexpected word 'b'"),
                         ("(2 )", "neither a word nor children"), ("", "empty line")]:
        with pytest.raises(ValueError, match=message):
            parse_tree(bad)


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def test_stanford_layout_dev_lines_and_cache_key(tmp_path):
    train, dev = ["(3 (3 Cool) (2 .))", "(1 (1 Bad) (2 .))"], ["(4 (4 Cool) (2 !))"]
    test = ["(0 (2 Very) (0 bad))"]
    write(tmp_path / "trees" / "train.txt", train)
    write(tmp_path / "trees" / "dev.txt", dev)
    write(tmp_path / "trees" / "test.txt", test)
    small = load_sst(tmp_path, download=False)
    assert [len(small.split()[name]) for name in SPLITS] == [2, 1, 1]
    assert small.vocabulary == ["", "<unk>", ".", "Bad", "Cool"]  # by count, then alphabetically
    assert small.dataset[2].x.view(-1).tolist() == [0, 4, 1]  # "!" is a dev word only
    assert small.dataset[3].x.view(-1).tolist() == [0, 1, 1]  # test words unseen in training
    assert load_sst(tmp_path, download=False, lowercase=True).dataset[3].x.view(-1).tolist() == [0, 1, 3]
    write(tmp_path / "trees" / "train.txt", train + dev)  # train followed by dev: dev dropped from train
    assert [len(load_sst(tmp_path, download=False).split()[name]) for name in SPLITS] == [2, 1, 1]
    write(tmp_path / "trees" / "train.txt", dev + train)  # a dev sentence inside train stays
    assert [len(load_sst(tmp_path, download=False).split()[name]) for name in SPLITS] == [3, 1, 1]
    write(tmp_path / "trees" / "test.txt", ["(0 (2 Very) bad)"])
    with pytest.raises(DatasetFileError, match=r"test.txt: line 1: tree: unexpected word 'bad'"):
        load_sst(tmp_path, download=False)
    os.remove(tmp_path / "trees" / "test.txt")
    with pytest.raises(DatasetNotFoundError, match=r"sst: not found; put .*trees/sst_train.txt"):
        load_sst(tmp_path, download=False)


def test_download_unpacks_stanfords_zip(tmp_path, monkeypatch):
    def fake_download(url, folder, log=True):  # Stanford's zip holds trees/{train,dev,test}.txt
        assert url == "https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip"
        path = Path(folder) / "trainDevTestTrees_PTB.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for part, line in (("train", "(3 (3 Cool) (2 .))"), ("dev", "(1 (1 Bad) (2 .))"),
                               ("test", "(0 (2 Very) (0 bad))")):
                archive.writestr(f"trees/{part}.txt", line + "\n")
        return str(path)

    monkeypatch.setattr("plstm_graph.data.sst.download_url", fake_download)
    assert [len(index) for index in load_sst(tmp_path).split().values()] == [1, 1, 1]
    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")) == [
        "trees", "trees/dev.txt", "trees/test.txt", "trees/train.txt"]
