import math

import pytest
import torch

from plstm_graph.graph.node_levels import node_schedule
from plstm_graph.graph.prepare import orient_dag
from plstm_graph.ops.dag_rnn import dag_lstm
from plstm_graph.testing import (RING_SMILES, assert_same_outputs_and_grads, chain, dense_dag,
                                 grid_dag, molecule, random_dag, random_tree, star)

NAMES = ("gates", "weight_iou", "weight_f", "attention")


def _batch(parts):
    """Disjoint union of ``(edge_index, num_nodes)`` pairs."""
    edges, offset = [], 0
    for edge_index, num_nodes in parts:
        edges.append(edge_index + offset)
        offset += num_nodes
    return torch.cat(edges, dim=1), offset


def graphs():
    gen = torch.Generator().manual_seed(0)
    tree, n = random_tree(20, gen)
    yield "chain", chain(12)
    yield "star", star(8)
    yield "tree root->leaves", (tree, n)
    yield "tree leaves->root", (tree.flip(0), n)
    yield "random dag", random_dag(15, 40, gen)  # with duplicate edges: two predecessors each
    yield "grid", grid_dag(3, 4)
    yield "dense", dense_dag(6)
    yield "isolated", (torch.tensor([[0, 2, 2], [2, 5, 6]]), 9)
    yield "no edges", (torch.zeros(2, 0, dtype=torch.long), 5)
    yield "batch", _batch([random_tree(7, gen), chain(1), random_dag(9, 20, gen), chain(4),
                          (torch.zeros(2, 0, dtype=torch.long), 3), star(5)])
    dag, _, _ = orient_dag(*molecule(RING_SMILES[-1]))  # caffeine, oriented by index
    yield "molecule", (dag, molecule(RING_SMILES[-1])[1])
    yield "molecule reversed", (dag.flip(0), molecule(RING_SMILES[-1])[1])


GRAPHS = list(graphs())


def random_inputs(num_nodes, hidden, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(num_nodes, 4, hidden, generator=gen, dtype=torch.float64),
            torch.randn(3 * hidden, hidden, generator=gen, dtype=torch.float64) / math.sqrt(hidden),
            torch.randn(hidden, hidden, generator=gen, dtype=torch.float64) / math.sqrt(hidden),
            torch.randn(hidden, generator=gen, dtype=torch.float64)]


@pytest.mark.parametrize("attention", [False, True], ids=["sum", "attention"])
@pytest.mark.parametrize("name,graph", GRAPHS, ids=[name for name, _ in GRAPHS])
def test_levels_match_per_node_reference(name, graph, attention):
    schedule = node_schedule(*graph)
    inputs = random_inputs(schedule.num_nodes, hidden=3)
    if not attention:
        inputs = inputs[:3]

    def run(backend):
        return lambda gates, w_iou, w_f, *att: dag_lstm(gates, w_iou, w_f, schedule,
                                                        *att, backend=backend)

    assert_same_outputs_and_grads(run("levels"), run("reference"), inputs, names=NAMES)


@pytest.mark.parametrize("backend", ["levels", "reference"])
def test_no_nodes(backend):
    schedule = node_schedule(torch.zeros(2, 0, dtype=torch.long), 0)
    gates, w_iou, w_f, att = random_inputs(0, hidden=3)
    assert dag_lstm(gates, w_iou, w_f, schedule, att, backend=backend).shape == (0, 3)


def test_one_edge_by_hand():
    """``0 -> 1`` with one channel, against Tai et al.'s equations written out."""
    gates = torch.tensor([[[0.1], [0.2], [0.3], [0.4]], [[-0.5], [0.6], [-0.7], [0.8]]],
                         dtype=torch.float64)
    w_iou = torch.tensor([[0.9], [-1.1], [1.2]], dtype=torch.float64)
    w_f = torch.tensor([[-1.3]], dtype=torch.float64)
    sig = torch.sigmoid
    c0 = sig(torch.tensor(0.1)) * torch.tanh(torch.tensor(0.3))
    h0 = sig(torch.tensor(0.2)) * torch.tanh(c0)
    c1 = sig(-0.5 + 0.9 * h0) * torch.tanh(-0.7 + 1.2 * h0) + sig(0.8 - 1.3 * h0) * c0
    h1 = sig(0.6 - 1.1 * h0) * torch.tanh(c1)
    schedule = node_schedule(torch.tensor([[0], [1]]), 2)
    for backend in ("levels", "reference"):
        out = dag_lstm(gates, w_iou, w_f, schedule, backend=backend)
        torch.testing.assert_close(out.view(-1).float(), torch.stack([h0, h1]).float())
    # With a single predecessor, attention weights are 1: the same result.
    out = dag_lstm(gates, w_iou, w_f, schedule, attention=torch.ones(1, dtype=torch.float64))
    torch.testing.assert_close(out.view(-1).float(), torch.stack([h0, h1]).float())


def test_relabelling_nodes_permutes_the_output():
    edge_index, n = random_dag(12, 30, torch.Generator().manual_seed(1))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(2))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(n)
    gates, w_iou, w_f, att = random_inputs(n, hidden=4)
    out = dag_lstm(gates, w_iou, w_f, node_schedule(edge_index, n), att)
    relabelled = dag_lstm(gates[perm], w_iou, w_f, node_schedule(inverse[edge_index], n), att)
    torch.testing.assert_close(relabelled, out[perm], atol=1e-12, rtol=0)


def test_attention_changes_multi_predecessor_nodes_only():
    edge_index, n = torch.tensor([[0, 1, 2], [2, 2, 3]]), 4
    gates, w_iou, w_f, att = random_inputs(n, hidden=3)
    schedule = node_schedule(edge_index, n)
    plain = dag_lstm(gates, w_iou, w_f, schedule)
    attended = dag_lstm(gates, w_iou, w_f, schedule, att)
    torch.testing.assert_close(attended[:2], plain[:2])  # no predecessors
    assert not torch.allclose(attended[2], plain[2])  # mean-like instead of a sum of two


def test_gradcheck_levels():
    schedule = node_schedule(*_batch([random_tree(5, torch.Generator().manual_seed(3)), chain(3)]))
    inputs = [x.requires_grad_() for x in random_inputs(schedule.num_nodes, hidden=2)]
    assert torch.autograd.gradcheck(lambda *xs: dag_lstm(*xs[:3], schedule, xs[3]), inputs)


def test_schedule_levels():
    edge_index, n = random_dag(30, 80, torch.Generator().manual_seed(4))
    schedule = node_schedule(edge_index, n)
    src, dst = edge_index
    assert bool((schedule.depth[src] < schedule.depth[dst]).all())
    assert sum(schedule.level_sizes) == n
    assert torch.equal(schedule.depth[schedule.order], torch.sort(schedule.depth).values)
    assert torch.equal(schedule.order[schedule.rank], torch.arange(n))
    # Every edge is read exactly once, by its target's level, from its source's level.
    read = torch.cat([inputs.edge for inputs in schedule.inputs if inputs is not None])
    assert torch.equal(read.sort().values, torch.arange(edge_index.size(1)))
    for level, inputs in enumerate(schedule.inputs[1:], start=1):
        start = schedule.node_ptr[level]
        assert torch.equal(schedule.order[start + inputs.target], dst[inputs.edge])
        sources = torch.cat([schedule.order[schedule.node_ptr[s] + (
            torch.arange(schedule.level_sizes[s]) if rows is None else rows)]
            for s, rows in inputs.sources])
        assert torch.equal(sources, src[inputs.edge])
        if inputs.one_each:
            assert torch.equal(inputs.target, torch.arange(schedule.level_sizes[level]))


def test_schedule_fast_paths():
    """Chains read the whole previous level; trees from the root down have one predecessor per
    node; leaves -> root trees have neither."""
    inputs = node_schedule(*chain(4)).inputs
    assert all(i.one_each and i.sources[0][1] is None for i in inputs[1:])
    tree, n = random_tree(30, torch.Generator().manual_seed(5))
    assert all(i.one_each for i in node_schedule(tree, n).inputs[1:])
    assert not all(i.one_each for i in node_schedule(tree.flip(0), n).inputs[1:])


def test_errors():
    schedule = node_schedule(*chain(3))
    gates, w_iou, w_f, att = random_inputs(3, hidden=2)
    with pytest.raises(ValueError, match="not acyclic"):
        node_schedule(torch.tensor([[0, 1, 2], [1, 2, 0]]), 3)
    with pytest.raises(ValueError, match="graph must be a NodeSchedule"):
        dag_lstm(gates, w_iou, w_f, chain(3)[0])
    with pytest.raises(ValueError, match="backend must be one of"):
        dag_lstm(gates, w_iou, w_f, schedule, backend="loop")
    with pytest.raises(ValueError, match="gates must have shape"):
        dag_lstm(gates[:2], w_iou, w_f, schedule)
    with pytest.raises(ValueError, match="weight_f must have shape"):
        dag_lstm(gates, w_iou, w_f[:1], schedule)
    with pytest.raises(ValueError, match="attention must have shape"):
        dag_lstm(gates, w_iou, w_f, schedule, att[:1])
