"""ENAS-6 neural architectures as DAGs, with their CIFAR-10 accuracy (the ``enas`` dataset).

Source: D-VAE (Zhang et al., NeurIPS 2019), ``data/final_structures6.txt`` of
github.com/muhanzhang/D-VAE @ 3569a4a3bf5ecf8e12ae548e0d22e72062d29e26: 20020 lines
``[[t1], [t2, b1], [t3, b1, b2], ..., [t6, b1, ..., b5]], accuracy``, the architectures ENAS
sampled in its 6-layer search space with their weight-sharing accuracy on CIFAR-10.

Graph (as D-VAE's ``decode_ENAS_to_igraph`` in ``util.py`` builds it): vertex 0 is the input,
vertices 1..6 are the layers (row ``i`` of the line is vertex ``i + 1``), vertex 7 the output.
Vertex ``i + 1`` has operation type ``t + 2`` (types 0 and 1 are the input and output), an edge
from vertex ``i`` always, and an edge ``j -> i + 1`` for each bit ``j`` (``j = 0 .. i - 1``) that
is 1 (skip connections). Vertices without a successor feed the output; in ENAS that is vertex 6
alone (D-VAE adds exactly the edge 6 -> 7). Vertices are in topological order; the edges keep
their direction (``orientation="given"``). ``x`` is the one-hot type [8, 8], ``y`` the accuracy
[1, 1]; there are no edge features.

Split (D-VAE's ``load_ENAS_graphs`` as ``train.py`` calls it): the first 1000 lines are skipped
(``burn_in=1000``), the other 19020 graphs shuffled by ``random.Random(0).shuffle`` and cut at
``int(0.9 * 19020)``: 17118 train, 1902 test. This loader keeps those 1902 test graphs and,
since a trainer needs a validation set, moves the last 1902 of D-VAE's (shuffled) training part
to validation: 15216 train / 1902 valid / 1902 test. The dataset holds all 20020 lines (graph
``k`` = line ``k + 1``); the burn-in graphs are in no split.

Protocol note: D-VAE and DAGNN score ENAS by a sparse Gaussian process on their unsupervised
encoders' latent codes (standardised accuracy, 10 seeds). Training a model on this split to
predict the accuracy from the DAG is supervised regression, a different protocol.
"""
import json
import random
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.data.download import download_url

from plstm_graph.data.benchmark import BenchmarkDataset, Split, as_split
from plstm_graph.data.errors import DatasetFileError
from plstm_graph.data.processed import ProcessedDataset, find_sources, open_text, stored_graphs
from plstm_graph.data.root import PathLike

FILE = "dags/final_structures6.txt"
URL = ("https://raw.githubusercontent.com/muhanzhang/D-VAE/3569a4a3bf5ecf8e12ae548e0d22e72062d29e26/"
       "data/final_structures6.txt")
#: Operation types of the ENAS search space; D-VAE shifts them by two, after the input (0) and
#: output (1) types: the names of vertex types 0..7 (as D-VAE's ``util.add_node`` draws them).
NUM_OPERATIONS = 6
VERTEX_TYPES = ("input", "output", "conv3", "sep3", "conv5", "sep5", "avg3", "max3")
INPUT_TYPE, OUTPUT_TYPE = 0, 1
#: D-VAE's protocol: lines skipped, shuffle seed, training fraction.
BURN_IN, SEED, TRAIN_FRACTION = 1000, 0, 0.9
CACHE_VERSION = 1


def enas_graph(row: Sequence[Sequence[int]], accuracy: Optional[float] = None,
               num_operations: int = NUM_OPERATIONS) -> Data:
    """One ENAS architecture (a parsed line without its accuracy) as a DAG; see the module
    docstring. ``row[i]`` is ``[type, bit_0, ..., bit_{i-1}]``."""
    types, adjacency = enas_arrays([row], num_operations)
    target, source = adjacency[0].nonzero()
    data = Data(x=torch.eye(num_operations + 2)[torch.from_numpy(types[0])],
                edge_index=torch.from_numpy(np.stack([source, target])))
    if accuracy is not None:
        data.y = torch.tensor([[accuracy]], dtype=torch.float32)
    return data


def enas_arrays(rows: Sequence[Sequence[Sequence[int]]],
                num_operations: int = NUM_OPERATIONS) -> Tuple[np.ndarray, np.ndarray]:
    """Vertex types [G, n + 2] and adjacency [G, n + 2, n + 2] (``[g, target, source]``) of
    ``G`` architectures of ``n`` layers each (see the module docstring).

    Raises ``ValueError`` naming the first malformed row.
    """
    rows = list(rows)
    n = len(rows[0]) if rows else 0
    shape = list(range(1, n + 1))  # layer i lists its type and i skip bits
    for index, row in enumerate(rows):
        if [len(node) for node in row] != shape:
            raise ValueError(f"rows: row {index} must have {n} layers, layer i with a type and i "
                             f"skip bits, got {row!r}")
    flat = np.array([[value for node in row for value in node] for row in rows],
                    dtype=np.int64).reshape(len(rows), -1)
    starts = np.cumsum([0] + shape[:-1])  # where each layer's type sits in a flat row
    is_type = np.zeros(flat.shape[1], dtype=bool)
    is_type[starts] = True
    bad = ((flat[:, is_type] < 0) | (flat[:, is_type] >= num_operations)).any(1)
    bad |= ~np.isin(flat[:, ~is_type], (0, 1)).all(1)
    if bad.any():
        index = int(bad.argmax())
        raise ValueError(f"rows: row {index} must have types in 0..{num_operations - 1} and 0/1 "
                         f"skip bits, got {rows[index]!r}")
    types = np.full((len(rows), n + 2), INPUT_TYPE)
    types[:, 1:-1] = flat[:, starts] + 2
    types[:, -1] = OUTPUT_TYPE
    adjacency = np.zeros((len(rows), n + 2, n + 2), dtype=bool)
    for i, start in enumerate(starts):
        adjacency[:, i + 1, :i] = flat[:, start + 1:start + 1 + i]
        adjacency[:, i + 1, i] = True  # every layer reads the one before
    adjacency[:, n + 1, :n + 1] = ~adjacency.any(axis=1)[:, :n + 1]  # sinks feed the output
    return types, adjacency


def parse_line(line: str) -> Tuple[list, float]:
    """``"[[t1], [t2, b], ...], acc"`` -> ``(row, acc)``."""
    row, accuracy = json.loads(f"[{line}]")
    return row, float(accuracy)


def dvae_split(num_graphs: int, burn_in: int = BURN_IN, seed: int = SEED,
               train_fraction: float = TRAIN_FRACTION) -> Split:
    """D-VAE's train / test split of graphs ``burn_in .. num_graphs - 1``, with a validation
    part as large as the test part carved from the end of the shuffled training part."""
    order = list(range(burn_in, num_graphs))
    random.Random(seed).shuffle(order)  # the permutation D-VAE's shuffle of its graph list makes
    cut = int(len(order) * train_fraction)
    train, test = order[:cut], order[cut:]
    if len(test) >= len(train):
        raise ValueError(f"num_graphs: {num_graphs} graphs leave too few after the burn-in of {burn_in} "
                         f"for train, validation and test parts")
    return as_split({"train": sorted(train[:-len(test)]), "valid": sorted(train[-len(test):]),
                     "test": sorted(test)})


class EnasDataset(ProcessedDataset):
    """The graphs of a ``final_structures6.txt`` file (plain or gzipped), one per line, with
    :attr:`meta` ``["split"]`` (:func:`dvae_split`)."""

    def __init__(self, path: PathLike, transform: Optional[Callable] = None):
        super().__init__("enas", [Path(path)], {"version": CACHE_VERSION}, transform)

    def build(self) -> Tuple[Data, Dict[str, Tensor], Dict]:
        path, rows, accuracies = self.sources[0], [], []
        with open_text(path) as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    row, accuracy = parse_line(line)
                except (ValueError, TypeError) as error:
                    raise DatasetFileError(f"{path}: line {number} is not `[[type], [type, bit], ...], "
                                           f"accuracy` ({error})") from error
                rows.append(row)
                accuracies.append(accuracy)
        try:
            types, adjacency = enas_arrays(rows)
        except ValueError as error:
            raise DatasetFileError(f"{path}: {error}; row k is line k + 1 of the file") from error
        graph, target, source = adjacency.nonzero()  # by graph, then target, then source
        num_graphs, num_vertices = types.shape
        data, slices = stored_graphs(
            torch.full((num_graphs,), num_vertices), torch.from_numpy(np.bincount(graph, minlength=num_graphs)),
            graph_attrs=("y",), x=torch.eye(NUM_OPERATIONS + 2)[torch.from_numpy(types.reshape(-1))],
            edge_index=torch.from_numpy(np.stack([source, target])),
            y=torch.tensor(accuracies, dtype=torch.float32).view(-1, 1))
        return data, slices, {"split": dvae_split(num_graphs)}


def load_enas(root: Optional[PathLike] = None, download: bool = True,
              transform: Optional[Callable] = None) -> BenchmarkDataset:
    """The ``enas`` regression dataset: ``<root>/dags/final_structures6.txt`` (or ``.gz``),
    downloaded from D-VAE's repository when missing and ``download`` is true. Metric RMSE
    (in accuracy units), Pearson's r beside it."""
    path, = find_sources("enas", [[FILE]], root, _fetch if download else None)
    dataset = EnasDataset(path, transform)
    return BenchmarkDataset("enas", dataset, task_type="regression", num_tasks=1, metric="rmse",
                            extra_metrics=("pearson",), features="onehot", orientation="given",
                            splits=[dataset.meta["split"]])


def _fetch(folder: Path) -> None:
    download_url(URL, str(folder / Path(FILE).parent), log=False)
