"""At initialisation a PLSTMConv carries a source's signal to a sink 64 DAG steps away.

The measure is the gradient of the sink's output with respect to the source's input features,
relative to the same gradient when the source is the sink's direct predecessor (depth 1),
with the same layer and the same two feature rows: the fraction of the signal the layer's
transitions keep over the path. The floors follow from the initialisation
(``ops/plstm/gates.py``): P-mode keeps 50/50.5 per step on a chain (0.53 over 63 line steps)
and more where a node has two successors; D-mode keeps tanh(5) per step.
"""
import math

import pytest
import torch

import plstm_graph as pg
from plstm_graph.testing import chain, grid_dag

WIDTH = 16

# (mode, graph) -> floor on the fraction of a unit source that reaches the sink.
FLOORS = {("P", "chain"): 0.5, ("P", "grid"): 0.5, ("D", "chain"): 0.95, ("D", "grid"): 0.95}


def sink_gradient(conv, graph, source: int, sink: int, rows: torch.Tensor, layer=False):
    """``d h_sink / d x_source`` (summed over the sink's outputs), other nodes random; ``h`` is
    the pLSTM output of the layer's own projections and gates before the per-head RMSNorm
    (which divides by everything else the sink holds), or with ``layer`` the layer's output."""
    edge_index, n = graph
    x = torch.randn(n, WIDTH, dtype=torch.float64)
    x[source], x[sink] = rows
    x.requires_grad_()
    line_graph = pg.prepare_dag(edge_index, n, mode=conv.mode, orientation="given")
    if layer:
        out = conv(x, line_graph)
    else:
        q, k, v, _ = conv.project(x)
        out = pg.plstm(q, k, v, *conv.gates(x, line_graph), line_graph, backend="levels")
    grad, = torch.autograd.grad(out[sink].sum(), x)
    return grad[source]


def transported_fraction(conv, graph, sink: int) -> float:
    """Signal at ``sink`` from node 0, per out-edge of node 0, relative to depth 1."""
    torch.manual_seed(0)
    rows = torch.randn(2, WIDTH, dtype=torch.float64)
    near = sink_gradient(conv, chain(2), 0, 1, rows).norm()
    far = sink_gradient(conv, graph, 0, sink, rows).norm()
    out_degree = int((graph[0][0] == 0).sum())
    return float(far / near) / out_degree


GRAPHS = {"chain": (chain(65), 64), "grid": (grid_dag(33, 33), 33 * 33 - 1)}  # both 64 deep


@pytest.mark.parametrize("kind", GRAPHS)
@pytest.mark.parametrize("mode", ["P", "D"])
def test_signal_crosses_64_steps_at_initialisation(mode, kind, one_thread):
    graph, sink = GRAPHS[kind]
    torch.manual_seed(1)
    conv = pg.PLSTMConv(WIDTH, WIDTH, heads=2, mode=mode, backend="levels").double()
    fraction = transported_fraction(conv, graph, sink)
    assert FLOORS[mode, kind] <= fraction <= 1.0 + 1e-9, fraction
    if kind == "chain":  # the chain's transport is the product of its transitions
        per_step = 50 / 50.5 if mode == "P" else math.tanh(5.0)
        assert fraction == pytest.approx(per_step ** 63, rel=1e-9)

    # Through the whole layer (per-head RMSNorm and output projection included) the source
    # still moves the sink's output, though diluted by all else the sink holds.
    rows = torch.randn(2, WIDTH, dtype=torch.float64)
    far = sink_gradient(conv, graph, 0, sink, rows, layer=True).norm()
    own = sink_gradient(conv, graph, sink, sink, rows.flip(0), layer=True).norm()
    # Measured: far 1.6e-3 (P grid) to 1.6e-2 (D grid); far / own 4e-3 (P grid) to 7e-2.
    assert float(far) > 1e-3 and float(far / own) > 2e-3, (float(far), float(own))


@pytest.mark.parametrize("mode", ["P", "D"])
def test_input_dependent_transitions_used_to_lose_the_signal(mode, one_thread):
    # With transitions drawn as a default-initialised linear layer (the earlier default), the
    # same measure falls by orders of magnitude over 64 steps: the floors above can fail.
    torch.manual_seed(1)
    conv = pg.PLSTMConv(WIDTH, WIDTH, heads=2, mode=mode, backend="levels",
                        transition_scale=1.0).double()
    torch.nn.init.kaiming_uniform_(conv.lin_gate.weight, a=5 ** 0.5)
    torch.nn.init.uniform_(conv.lin_gate.bias[3 * 2:4 * 2], -0.25, 0.25)  # transition biases
    assert transported_fraction(conv, *GRAPHS["chain"]) < 1e-6


@pytest.mark.parametrize("kind", GRAPHS)
@pytest.mark.parametrize("mode", ["P", "D"])
def test_multiscale_gates_keep_one_long_head(mode, kind, one_thread):
    # gates="multiscale": head 0 keeps 0.5 per step (0.5^63 ~ 1e-19 over the chain), head 1
    # 0.99 (0.53); what reaches the sink is head 1's share of the depth-1 signal, times 0.53.
    graph, sink = GRAPHS[kind]
    torch.manual_seed(1)
    conv = pg.PLSTMConv(WIDTH, WIDTH, heads=2, mode=mode, backend="levels",
                        gates="multiscale").double()
    fraction = transported_fraction(conv, graph, sink)  # measured: 0.29 (chains), 0.38 (P grid)
    assert 0.2 <= fraction <= (0.99 ** 63 if kind == "chain" else 1.0), fraction
