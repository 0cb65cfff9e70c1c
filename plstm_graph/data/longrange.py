"""Long-range DAG benchmarks (``longrange-<kind>-<depth>``): keys and values at the sources, a
query at the sink, the answer ``depth`` DAG steps away from where it is asked.

A key-value look-up across a DAG, after Tree-NeighborsMatch (Alon and Yahav 2021, "On the
bottleneck of graph neural networks"), where the root of a binary tree asks for the value of
the leaf holding its key. Here every graph has:

- ``num_keys`` **sources**, each with a distinct key (a permutation of ``0 .. num_keys - 1``)
  and a value: drawn independently (``values="random"``, the default) or a permutation too
  (``values="distinct"``);
- one **sink** holding a query key; every source is exactly ``depth`` edges above it;
- **inner nodes** between them, marked by their role only (the distractors are the other
  sources, whose keys the query does not ask for);
- the label, at the sink: the value of the source whose key is the query (``num_keys`` classes,
  each equally often).

Kinds:

- ``"dag"``: ``depth + 1`` layers (the sources, ``depth - 1`` layers of ``width`` inner nodes,
  the sink); every node has an edge to a random node of the next layer, and every inner node
  takes ``fan_in`` distinct predecessors from the layer before, so there are several paths
  per step and every source reaches the sink.
- ``"tree"``: edges from child to parent; the sources are leaves at depth ``depth`` below the
  root (the sink) and their paths merge at random levels, as in Tree-NeighborsMatch but with
  ``num_keys`` leaves instead of ``2 ** depth`` (so that depth 64 stays small): one path per
  source. (A simpler variant than the original, which has a full binary tree.)

A model whose receptive field at the sink is shorter than ``depth`` cannot do better than
chance (``1 / num_keys``). With random values, one that sees the values but not which key they
belong to can do better than chance (the answer is the most frequent value; 0.75 with 2 keys) and
only the look-up reaches 1: the partial signal is what lets gradient descent start. With distinct
values the multiset of values says nothing about the answer, so nothing short of the whole
look-up beats chance: for two keys the answer is the XOR of the query and a bit held at a
source, the hard case of credit assignment (neither pLSTM nor a DAG-LSTM left chance at depth 4
within 15 epochs here; see the README).

Features (``"onehot"``, float): ``[role (source, inner, sink) | key one-hot | value one-hot |
query one-hot]``, ``3 + 3 num_keys`` columns: keys and values at the sources, the query at
the sink, the role alone at inner nodes. Node-level task: ``y`` [N] long is the label at the sink and -1
elsewhere, ``root_mask`` [N] bool marks the sink; metric ``"acc"``. ``orientation="given"``:
edges point from the sources towards the sink.

Generated in memory, deterministically from ``seed`` (and kind, depth and sizes): no files.
"""
from typing import Callable, Optional

import numpy as np
import torch
from torch_geometric.data import InMemoryDataset

from plstm_graph.data.benchmark import BenchmarkDataset, as_split
from plstm_graph.data.processed import stored_graphs
from plstm_graph.data.root import PathLike
from plstm_graph.graph.validation import check_one_of, check_positive_int

KINDS = ("dag", "tree")
VALUES = ("random", "distinct")
PREFIX = "longrange-"
SOURCE, INNER, SINK = range(3)
#: Split sizes: small enough that a model trains on one depth in a minute or two on a CPU.
SIZES = {"train": 2000, "valid": 500, "test": 500}


def _layers(sizes) -> list:
    starts = np.cumsum([0, *sizes])
    return [np.arange(starts[i], starts[i + 1]) for i in range(len(sizes))]


def layered_dag(depth: int, num_keys: int, width: int, fan_in: int, rng: np.random.Generator):
    """``(layers, edges)``: node ids per layer (sources first, the sink last) and ``[2, E]``."""
    sizes = [num_keys] + [width] * (depth - 1) + [1]
    layers = _layers(sizes)
    # Every node continues to a random node of the next layer: every source reaches the sink.
    upper = np.arange(layers[-1][0])
    layer_of = np.repeat(np.arange(depth), sizes[:-1])
    next_start = np.array([layer[0] for layer in layers[1:]])[layer_of]
    next_size = np.array(sizes[1:])[layer_of]
    pairs = [np.stack([upper, next_start + (rng.random(len(upper)) * next_size).astype(int)])]
    # Several paths per step: every inner node takes fan_in distinct predecessors.
    for inner, size, start in ((layers[1], num_keys, 0),
                               (np.concatenate(layers[2:depth] or [[]]).astype(int), width, None)):
        if len(inner) == 0 or (depth == 1):
            continue
        if start is None:  # inner layer i >= 2 draws from inner layer i - 1
            start = num_keys + ((inner - num_keys) // width - 1) * width
        choice = rng.random((len(inner), size)).argsort(1)[:, :min(fan_in, size)]
        pairs.append(np.stack([(start + choice.T).ravel(), np.tile(inner, choice.shape[1])]))
    num_nodes = layers[-1][0] + 1
    src, dst = np.concatenate(pairs, axis=1)
    return layers, np.stack(np.divmod(np.unique(src * num_nodes + dst), num_nodes))


def merging_tree(depth: int, num_keys: int, rng: np.random.Generator):
    """``(layers, edges)`` of an in-tree: ``num_keys`` leaves ``depth`` below the root, whose
    paths merge at random levels (each merge joins two branches; those left join at the root)."""
    # merges[j]: merges between layer j and j + 1 (layer 0 = the leaves, layer depth = the root).
    merges = np.bincount(rng.integers(0, depth - 1, size=num_keys - 1), minlength=depth) \
        if depth > 1 else np.zeros(1, dtype=int)
    sizes = np.maximum(num_keys - np.concatenate([[0], np.cumsum(merges[:-1])]), 1).tolist() + [1]
    layers = _layers(sizes)
    # A branch keeps its position in every layer, except where branches merge.
    parents = np.concatenate([upper[:len(lower)] if len(upper) == len(lower) else
                              upper[rng.permutation(np.concatenate(
                                  [np.arange(len(upper)), rng.integers(len(upper), size=len(lower) - len(upper))]))]
                              for lower, upper in zip(layers[:-1], layers[1:])])
    return layers, np.stack([np.arange(len(parents)), parents])


def make_graph(kind: str, depth: int, num_keys: int, width: int, fan_in: int, label: int,
               rng: np.random.Generator, values: str = "random") -> dict:
    """One graph's ``x`` [N, 3 + 3 num_keys], ``edge_index``, ``y`` and ``root_mask``."""
    if kind == "dag":
        layers, edge_index = layered_dag(depth, num_keys, width, fan_in, rng)
    else:
        layers, edge_index = merging_tree(depth, num_keys, rng)
    sources, sink = layers[0], int(layers[-1][0])
    num_nodes = sink + 1
    keys = rng.permutation(num_keys)
    query = int(rng.integers(num_keys))
    asked = int(np.flatnonzero(keys == query)[0])
    # The source asked for holds the label (a distinct value: swapped there).
    if values == "distinct":
        held = rng.permutation(num_keys)
        held[held == label], held[asked] = held[asked], label
    else:
        held = rng.integers(num_keys, size=num_keys)
        held[asked] = label

    x = np.zeros((num_nodes, 3 + 3 * num_keys), dtype=np.float32)
    role = np.full(num_nodes, INNER)
    role[sources], role[sink] = SOURCE, SINK
    x[np.arange(num_nodes), role] = 1
    x[sources, 3 + keys] = 1
    x[sources, 3 + num_keys + held] = 1
    x[sink, 3 + 2 * num_keys + query] = 1
    y = np.full(num_nodes, -1)
    y[sink] = label
    return {"x": x, "edge_index": edge_index, "y": y, "root_mask": np.arange(num_nodes) == sink}


class LongRangeDataset(InMemoryDataset):
    """The graphs of one ``longrange-<kind>-<depth>`` set, generated in memory (see the module
    docstring). Graphs ``0 .. sizes[0] - 1`` are the training set, then validation, then test."""

    def __init__(self, kind: str = "dag", depth: int = 8, num_keys: int = 2, width: int = 4,
                 fan_in: int = 2, sizes: tuple = tuple(SIZES.values()), seed: int = 0,
                 values: str = "random", transform: Optional[Callable] = None):
        check_one_of(kind, "kind", KINDS)
        check_one_of(values, "values", VALUES)
        for value, name in ((depth, "depth"), (width, "width"), (fan_in, "fan_in")):
            check_positive_int(value, name)
        if check_positive_int(num_keys, "num_keys") < 2:
            raise ValueError(f"num_keys must be at least 2, got {num_keys}")
        super().__init__(None, transform)
        self.kind, self.depth, self.num_keys, self.values = kind, depth, num_keys, values
        self.sizes = tuple(check_positive_int(size, "sizes") for size in sizes)
        # One stream per (seed, kind, depth, ...): every set is reproducible on its own.
        rng = np.random.default_rng([seed, KINDS.index(kind), depth, num_keys, width, fan_in,
                                     VALUES.index(values)])
        total = sum(self.sizes)
        labels = rng.permutation(np.arange(total) % num_keys)  # every class equally often
        graphs = [make_graph(kind, depth, num_keys, width, fan_in, int(label), rng, values)
                  for label in labels]
        cat = lambda key, axis=0: torch.from_numpy(np.concatenate([g[key] for g in graphs], axis))
        self.data, self.slices = stored_graphs(
            torch.tensor([len(g["y"]) for g in graphs]),
            torch.tensor([g["edge_index"].shape[1] for g in graphs]),
            x=cat("x"), edge_index=cat("edge_index", 1).long(), y=cat("y").long(),
            root_mask=cat("root_mask"))

    def split(self) -> dict:
        bounds = np.cumsum((0,) + self.sizes)
        return as_split({name: np.arange(bounds[i], bounds[i + 1])
                         for i, name in enumerate(("train", "valid", "test"))})

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(kind={self.kind!r}, depth={self.depth}, "
                f"num_keys={self.num_keys}, values={self.values!r}, graphs={len(self)})")


def parse_longrange_name(name: str) -> Optional[tuple]:
    """``"longrange-dag-16"`` -> ``("dag", 16)``; ``None`` for a name outside the family;
    ``ValueError`` for a malformed one."""
    if not isinstance(name, str) or not name.startswith(PREFIX):
        return None
    kind, _, depth = name[len(PREFIX):].partition("-")
    if kind not in KINDS or not depth.isdigit() or int(depth) < 1:
        raise ValueError(f"name: expected {PREFIX}<kind>-<depth> with kind one of "
                         f"{', '.join(KINDS)} and a positive depth, got {name!r}")
    return kind, int(depth)


def load_longrange(name: str, root: Optional[PathLike] = None, download: bool = True,
                   transform: Optional[Callable] = None, **kwargs) -> BenchmarkDataset:
    """``longrange-<kind>-<depth>``; ``root`` and ``download`` are accepted for the loaders'
    common signature and not used (the data is generated). ``kwargs`` go to
    :class:`LongRangeDataset` (``num_keys``, ``width``, ``fan_in``, ``sizes``, ``seed``,
    ``values``)."""
    kind, depth = parse_longrange_name(name)
    dataset = LongRangeDataset(kind, depth, transform=transform, **kwargs)
    return BenchmarkDataset(name, dataset, task_type="multiclass classification",
                            num_tasks=dataset.num_keys, metric="acc", features="onehot",
                            orientation="given", task_level="node", splits=[dataset.split()])


__all__ = ["KINDS", "VALUES", "LongRangeDataset", "load_longrange", "parse_longrange_name"]
