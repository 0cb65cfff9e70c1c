"""Stanford Sentiment Treebank parse trees as DAGs with a label at every node (``sst``,
``sst-binary``).

Source: the PTB-style trees of Socher et al. (2013), one sentence per line, e.g.
``(3 (2 It) (4 (2 's) (3 lovely)))``: every constituent has a sentiment label 0..4 (very
negative .. very positive), every leaf a word. Found as ``<root>/trees/sst_{train,dev,test}.txt``
(the layout of ``../shared/data``, from github.com/munikarmanish/RNTN) or as
``<root>/trees/{train,dev,test}.txt`` (Stanford's ``trainDevTestTrees_PTB.zip`` unpacked into the
root, which is what a download does); each file may be gzipped. munikarmanish's train file is
Stanford's train followed by its dev lines: when the train file ends with exactly the lines of
the dev file they are dropped (only a trailing block: a train sentence may equal a dev one).

Graph: nodes in pre-order (the root is node 0, a parent comes before its children, the leaves
are the words in sentence order); edges run from each child to its parent
(``orientation="given"``: the index order runs against the edges, and models must not
re-orient them). ``x`` [N, 1] long word ids: 0 at inner nodes, 1 for a word not in the
vocabulary, 2.. for the words of the training sentences (by falling count, then alphabetically).
``y`` [N] long labels, ``root_mask`` [N] bool (True at node 0). Fine-grained (``sst``): 5
classes. Binary (``sst-binary``, as Tai et al. 2015 and the literature): labels 0, 1 -> 0 and
3, 4 -> 1, neutral nodes unlabelled (-1), sentences with a neutral root dropped.

Split: the standard 8544 / 1101 / 2210 sentences (binary: 6920 / 872 / 1821). Main metric root
accuracy (``"acc"``), beside it the accuracy over every labelled node (``"acc_all_nodes"``).
"""
import re
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.data.download import download_url
from torch_geometric.data.extract import extract_zip

from plstm_graph.data.benchmark import BenchmarkDataset
from plstm_graph.data.errors import DatasetFileError
from plstm_graph.data.processed import ProcessedDataset, find_sources, open_text, stored_graphs
from plstm_graph.data.root import PathLike

PARTS = ("train", "dev", "test")
#: Where the files are looked for under the data root (each may also end in ``.gz``).
LAYOUTS = ([f"trees/sst_{part}.txt" for part in PARTS], [f"trees/{part}.txt" for part in PARTS])
URL = "https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip"
NUM_LABELS = 5
NO_WORD, UNKNOWN = 0, 1
SPECIAL_TOKENS = ("", "<unk>")
#: Fine-grained label -> binary label (-1 = neutral, unlabelled).
BINARY_LABELS = (0, 0, -1, 1, 1)
CACHE_VERSION = 1
#: ``(`` with the label after it, ``)``, or a word; words split at ASCII white space only
#: (SST has "8\xa01\\/2" as one word).
_LABELS = {str(label): label for label in range(NUM_LABELS)}
_TOKEN = re.compile(r"(\()\s*([^\s()]*)|(\))|([^\s()]+)", re.ASCII)


class Tree(NamedTuple):
    """A parsed sentence; nodes in pre-order (node 0 = the root)."""
    labels: List[int]
    parents: List[int]        # -1 for the root
    words: List[str]          # "" at inner nodes

    @property
    def sentence(self) -> str:
        return " ".join(word for word in self.words if word)


def parse_tree(line: str) -> Tree:
    """One PTB-style tree, ``(label child child ...)`` or ``(label word)``, by an iterative
    parser (no recursion limit). Raises ``ValueError`` saying what is malformed."""
    labels, parents, words, open_nodes = [], [], [], []
    for opening, label, closing, word in _TOKEN.findall(line):
        if opening:
            if open_nodes and words[open_nodes[-1]]:
                raise ValueError(f"tree: node {open_nodes[-1]} has both a word and children")
            if labels and not open_nodes:
                raise ValueError("tree: more than one root")
            if label not in _LABELS:
                raise ValueError(f"tree: expected a label 0..{NUM_LABELS - 1} after '(', got {label!r}")
            parents.append(open_nodes[-1] if open_nodes else -1)
            open_nodes.append(len(labels))
            labels.append(_LABELS[label])
            words.append("")
        elif closing:
            if not open_nodes:
                raise ValueError("tree: unbalanced ')'")
            node = open_nodes.pop()
            if not words[node] and (node + 1 == len(labels) or parents[node + 1] != node):
                raise ValueError(f"tree: node {node} has neither a word nor children")
        elif not open_nodes or open_nodes[-1] != len(labels) - 1 or words[-1]:
            # a word belongs to the newest node, and only while it has no child and no word
            raise ValueError(f"tree: unexpected word {word!r}")
        else:
            words[-1] = word
    if open_nodes or not labels:
        raise ValueError("tree: unbalanced '(' or empty line")
    return Tree(labels, parents, words)


def read_trees(path: Path) -> List[str]:
    """The non-empty lines of a tree file, stripped."""
    with open_text(path) as lines:
        return [line.strip() for line in lines if line.strip()]


def parse_file(path: Path, lines: Sequence[str]) -> List[Tree]:
    trees = []
    for number, line in enumerate(lines, start=1):
        try:
            trees.append(parse_tree(line))
        except ValueError as error:
            raise DatasetFileError(f"{path}: line {number}: {error}") from error
    return trees


def build_vocabulary(trees: Sequence[Tree], lowercase: bool = False) -> List[str]:
    """``["", "<unk>", words...]``: the words of ``trees`` by falling count, then alphabetically."""
    counts = Counter(_word(word, lowercase) for tree in trees for word in tree.words if word)
    return [*SPECIAL_TOKENS, *sorted(counts, key=lambda word: (-counts[word], word))]


def _word(word: str, lowercase: bool) -> str:
    return word.lower() if lowercase else word


class SSTDataset(ProcessedDataset):
    """The trees of the three SST files as PyG graphs (see the module docstring).

    :attr:`meta` holds ``"split"``, ``"vocabulary"`` and ``"sentences"`` (the words of each
    graph's leaves, joined by spaces; also :attr:`sentences`).

    Args:
        paths: the train, dev and test files.
        binary: the binary task (neutral labels dropped).
        lowercase: lowercase the words before building the vocabulary and looking them up.
    """

    def __init__(self, paths: Sequence[PathLike], binary: bool = False, lowercase: bool = False,
                 transform: Optional[Callable] = None):
        self.binary, self.lowercase = binary, lowercase
        super().__init__("sst", paths, {"version": CACHE_VERSION, "binary": binary, "lowercase": lowercase},
                         transform)

    @property
    def sentences(self) -> List[str]:
        return self.meta["sentences"]

    @property
    def vocabulary(self) -> List[str]:
        return self.meta["vocabulary"]

    def build(self) -> Tuple[Data, Dict[str, Tensor], Dict]:
        if self.binary:
            return binary_graphs(SSTDataset(self.sources, lowercase=self.lowercase))
        lines = dict(zip(PARTS, map(read_trees, self.sources)))
        dev = lines["dev"]
        if len(lines["train"]) > len(dev) and lines["train"][-len(dev):] == dev:
            lines["train"] = lines["train"][:-len(dev)]  # munikarmanish's train = train + dev
        trees = {part: parse_file(path, lines[part]) for part, path in zip(PARTS, self.sources)}
        vocabulary = build_vocabulary(trees["train"], self.lowercase)
        word_ids = {word: index for index, word in enumerate(vocabulary)}
        word_ids[""] = NO_WORD
        every, sizes = [tree for part in PARTS for tree in trees[part]], [len(trees[part]) for part in PARTS]
        split = dict(zip(("train", "valid", "test"), torch.arange(len(every)).split(sizes)))
        num_nodes = torch.tensor([len(tree.labels) for tree in every])
        words = [word_ids.get(_word(word, self.lowercase), UNKNOWN) for tree in every for word in tree.words]
        children = [(child, parent) for tree in every for child, parent in enumerate(tree.parents) if parent >= 0]
        data, slices = stored_graphs(
            num_nodes, num_nodes - 1, x=torch.tensor(words).view(-1, 1),
            edge_index=torch.tensor(children, dtype=torch.long).view(-1, 2).t().contiguous(),
            y=torch.tensor([label for tree in every for label in tree.labels]),
            root_mask=torch.tensor([parent < 0 for tree in every for parent in tree.parents]))
        return data, slices, {"split": split, "vocabulary": vocabulary,
                              "sentences": [tree.sentence for tree in every]}


def binary_graphs(fine: SSTDataset) -> Tuple[Data, Dict[str, Tensor], Dict]:
    """The binary task from the fine-grained graphs: labels mapped by :data:`BINARY_LABELS`,
    sentences with a neutral root dropped; same vocabulary."""
    data, slices = fine._data, fine.slices
    num_nodes = slices["x"].diff()
    binary = torch.tensor(BINARY_LABELS)[data.y]
    keep = binary[data.root_mask] >= 0  # per sentence
    nodes, edges = keep.repeat_interleave(num_nodes), keep.repeat_interleave(num_nodes - 1)
    kept, slices = stored_graphs(num_nodes[keep], num_nodes[keep] - 1, x=data.x[nodes],
                                 edge_index=data.edge_index[:, edges], y=binary[nodes],
                                 root_mask=data.root_mask[nodes])
    new_index = keep.cumsum(0) - 1
    split = {name: new_index[index[keep[index]]] for name, index in fine.meta["split"].items()}
    sentences = [sentence for sentence, chosen in zip(fine.sentences, keep.tolist()) if chosen]
    return kept, slices, {"split": split, "vocabulary": fine.vocabulary, "sentences": sentences}


def load_sst(root: Optional[PathLike] = None, download: bool = True, transform: Optional[Callable] = None,
             binary: bool = False, lowercase: bool = False) -> BenchmarkDataset:
    """``sst`` (5 classes) or, with ``binary=True``, ``sst-binary``: node-level sentiment with
    root accuracy as the metric; see the module docstring for the files and the protocol.
    Downloads Stanford's zip into the data root when no layout is found and ``download`` is true."""
    paths = find_sources("sst", LAYOUTS, root, _fetch if download else None)
    dataset = SSTDataset(paths, binary=binary, lowercase=lowercase, transform=transform)
    return BenchmarkDataset("sst-binary" if binary else "sst", dataset,
                            task_type="multiclass classification", num_tasks=2 if binary else NUM_LABELS,
                            metric="acc", extra_metrics=("acc_all_nodes",), features="tokens",
                            orientation="given", task_level="node", vocabulary=dataset.vocabulary,
                            splits=[dataset.meta["split"]])


def _fetch(folder: Path) -> None:
    archive = download_url(URL, str(folder), log=False)
    extract_zip(archive, str(folder), log=False)
    Path(archive).unlink()
