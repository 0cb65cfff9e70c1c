import pytest
import torch

import plstm_graph as pg
from plstm_graph.data import get_dataset
from plstm_graph.data.longrange import (SINK, SOURCE, VALUES, LongRangeDataset,
                                        parse_longrange_name)

SIZES = (24, 8, 8)
KEYS = 2


def columns(x: torch.Tensor, block: int) -> torch.Tensor:
    """The one-hot block ``block`` (0 role, 1 key, 2 value, 3 query) of ``x`` as class ids."""
    part = x[:, :3] if block == 0 else x[:, 3 + (block - 1) * KEYS:3 + block * KEYS]
    return torch.where(part.sum(1) > 0, part.argmax(1), -1)


def answer_from_the_sources(graph) -> int:
    """The value of the source whose key the sink asks for, read from those rows alone."""
    role = columns(graph.x, 0)
    query = int(columns(graph.x[role == SINK], 3)[0])
    sources = graph.x[role == SOURCE]
    return int(columns(sources, 2)[columns(sources, 1) == query][0])


@pytest.mark.parametrize("kind", ["dag", "tree"])
def test_deterministic_and_seeded(kind):
    first, again = (LongRangeDataset(kind, 5, sizes=SIZES, seed=3) for _ in range(2))
    other = LongRangeDataset(kind, 5, sizes=SIZES, seed=4)
    for key in ("x", "edge_index", "y", "root_mask"):
        assert torch.equal(first._data[key], again._data[key]), key
    assert not torch.equal(first._data.x, other._data.x)


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("kind", ["dag", "tree"])
@pytest.mark.parametrize("depth", [1, 2, 9])
def test_depth_paths_and_answer(kind, depth, values):
    dataset = LongRangeDataset(kind, depth, sizes=SIZES, values=values)
    assert len(dataset) == sum(SIZES) and dataset.num_node_features == 3 + 3 * KEYS
    for graph in dataset:
        line_graph = pg.prepare_dag(graph.edge_index, graph.num_nodes, orientation="given")
        assert line_graph.num_levels == depth  # the longest path has `depth` edges
        sink = int(graph.root_mask.nonzero())
        assert int(graph.root_mask.sum()) == 1 and sink == graph.num_nodes - 1
        assert bool((graph.y[~graph.root_mask] == -1).all())
        # Paths from every node to the sink, counted backwards over the topological levels.
        paths = torch.zeros(graph.num_nodes, dtype=torch.long)
        paths[sink] = 1
        src, dst = graph.edge_index
        for _ in range(depth):
            paths = torch.zeros_like(paths).index_add(0, src, paths[dst])
            paths[sink] = 1
        sources = columns(graph.x, 0) == SOURCE
        assert bool((paths[sources] > 0).all())  # every source reaches the sink
        if kind == "tree":
            assert bool((torch.bincount(src, minlength=graph.num_nodes)[:sink] == 1).all())
        if values == "distinct":  # the sources' values alone say nothing about the answer
            assert sorted(columns(graph.x[sources], 2).tolist()) == list(range(KEYS))
        assert answer_from_the_sources(graph) == int(graph.y[sink])
    if kind == "dag" and depth > 2:  # several paths per step
        assert int(paths[sources].max()) > 1


def test_inner_nodes_hold_only_their_role():
    graph = LongRangeDataset("dag", 6, sizes=SIZES)[0]
    role = columns(graph.x, 0)
    inner = (role != SOURCE) & (role != SINK)
    assert int(inner.sum()) == 5 * 4 and bool((graph.x[inner, 3:].sum(1) == 0).all())
    assert bool((graph.x[role == SOURCE, 3:3 + 2 * KEYS].sum(1) == 2).all())


def test_random_values_give_a_partial_signal_only():
    """Reading the values without the keys (the best guess: the most frequent value, ties
    broken at random) beats chance with random values, and is chance with distinct ones."""
    sizes = (400, 1, 1)
    for values, low, high in (("random", 0.68, 0.82), ("distinct", 0.42, 0.58)):
        dataset = LongRangeDataset("dag", 2, sizes=sizes, values=values)
        generator, hits = torch.Generator().manual_seed(0), 0.0
        for graph in dataset:
            counts = torch.bincount(columns(graph.x[columns(graph.x, 0) == SOURCE], 2),
                                    minlength=KEYS)
            best = (counts == counts.max()).float()
            hits += float(best[int(graph.y[graph.root_mask])] / best.sum())
        assert low < hits / len(dataset) < high, values


def test_labels_balanced_and_splits():
    dataset = LongRangeDataset("tree", 4, sizes=SIZES)
    labels = dataset._data.y[dataset._data.root_mask]
    assert torch.bincount(labels).tolist() == [sum(SIZES) // KEYS] * KEYS
    split = dataset.split()
    assert [len(split[name]) for name in ("train", "valid", "test")] == list(SIZES)
    assert torch.equal(torch.cat(list(split.values())), torch.arange(sum(SIZES)))


def test_registry_names():
    benchmark = get_dataset("longrange-dag-3", sizes=SIZES)
    assert benchmark.orientation == "given" and benchmark.task_level == "node"
    assert benchmark.num_tasks == KEYS and benchmark.metric == "acc"
    assert parse_longrange_name("longrange-tree-64") == ("tree", 64)
    assert parse_longrange_name("MUTAG") is None
    for bad in ("longrange-ring-4", "longrange-dag-0", "longrange-dag-x", "longrange-dag"):
        with pytest.raises(ValueError, match="expected longrange-<kind>-<depth>"):
            get_dataset(bad)
    with pytest.raises(ValueError, match="num_keys must be at least 2"):
        LongRangeDataset("dag", 3, num_keys=1)
    with pytest.raises(ValueError, match="kind must be one of"):
        LongRangeDataset("ring", 3)
    with pytest.raises(ValueError, match="values must be one of"):
        LongRangeDataset("dag", 3, values="sorted")
