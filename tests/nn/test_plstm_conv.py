import math

import pytest
import torch

import plstm_graph as pg
from plstm_graph.nn import GraphModel
from plstm_graph.ops.plstm.gates import p_mode_transition
from plstm_graph.testing import RING_SMILES, molecule


def graph(smiles=RING_SMILES[2]):
    edge_index, n = molecule(smiles)
    return torch.randn(n, 16), edge_index


def test_shapes_repr_and_initial_gates():
    x, edge_index = graph()
    conv = pg.PLSTMConv(16, 32, heads=4, mode="D")
    assert repr(conv) == "PLSTMConv(16, 32, heads=4, mode='D', edge_dim=None)"
    assert conv(x, edge_index).shape == (x.size(0), 32)
    g = conv.line_graph(x, edge_index)
    source, transition, mark, direct = conv.gates(x, g)
    for gate, bias in ((source, 0.0), (mark, 0.0), (direct, -5.0)):  # Direct as in the paper
        torch.testing.assert_close(gate, torch.full_like(gate, torch.sigmoid(torch.tensor(bias))))
    # D-mode transitions start input-independent and saturated: tanh(5), every line edge.
    torch.testing.assert_close(transition, torch.full_like(transition, math.tanh(5.0)))
    names = {name for name, _ in conv.named_parameters()}
    assert {"lin_query.weight", "lin_key.weight", "lin_value.weight", "lin_out.weight"} <= names


def test_official_gates():
    x, edge_index = graph()
    conv = pg.PLSTMConv(16, 16, heads=2, mode="P", edge_dim=3)
    conv.reset_official_gates(torch.Generator().manual_seed(0))
    bias = conv.lin_gate.bias.view(-1, 2)[3].detach()
    g = conv.line_graph(x, edge_index)
    source, transition, mark, direct = conv.gates(x, g, torch.randn(edge_index.size(1), 3))
    for gate in (source, mark, direct):
        torch.testing.assert_close(gate, torch.full_like(gate, torch.sigmoid(torch.tensor(-5.0))))
    torch.testing.assert_close(transition, p_mode_transition(
        bias.expand(g.num_line_edges, 2), g))
    assert float(bias.abs().max()) > 2.0  # drawn with standard deviation 10


def chain_gates(conv, x, edge_index):
    """Source, Mark and Direct, and the Transitions of the line nodes with one successor (in
    P-mode those with more share a little more than one keeps)."""
    g = conv.line_graph(x, edge_index)
    source, transition, mark, direct = conv.gates(x, g)
    if conv.mode == "P":
        successors = torch.bincount(g.line_index[0], minlength=g.num_edges)[g.line_index[0]]
        assert bool((successors == 1).any())
        transition = transition[successors == 1]
    return source, transition, mark, direct


@pytest.mark.parametrize("mode", ["P", "D"])
def test_multiscale_gates(mode):
    """Head h keeps gamma_h of a cell per chain step at initialisation, 0.5 for the first head
    up to 0.99 for the last, 1 - gamma geometric in between; the other gates are the defaults."""
    retention = pg.nn.plstm_conv.multiscale_retention(4)
    torch.testing.assert_close(retention[[0, -1]], torch.tensor([0.5, 0.99]))
    gaps = 1 - retention
    torch.testing.assert_close(gaps[1:] / gaps[:-1], (gaps[1] / gaps[0]).expand(3))
    x, edge_index = graph()
    conv = pg.PLSTMConv(16, 16, heads=4, mode=mode, gates="multiscale")
    assert "gates='multiscale'" in repr(conv)
    source, transition, _, direct = chain_gates(conv, x, edge_index)
    torch.testing.assert_close(source, torch.full_like(source, 0.5))
    torch.testing.assert_close(direct, torch.full_like(direct, torch.sigmoid(torch.tensor(-5.0))))
    torch.testing.assert_close(transition, retention.expand_as(transition))
    bias = conv.lin_gate.bias.detach().clone()
    torch.nn.init.normal_(conv.lin_gate.bias)
    conv.reset_parameters()  # keeps the multiscale initialisation
    torch.testing.assert_close(conv.lin_gate.bias.detach(), bias)
    with pytest.raises(ValueError, match="gates must be one of default, official, multiscale"):
        pg.PLSTMConv(16, 16, gates="spread")


@pytest.mark.parametrize("mode", ["P", "D"])
def test_local_gates(mode):
    """gates="local": every head keeps half a cell per chain step at initialisation, and a
    signal fades over a few steps instead of crossing the DAG."""
    x, edge_index = graph()
    conv = pg.PLSTMConv(16, 16, heads=4, mode=mode, gates="local")
    assert "gates='local'" in repr(conv)
    source, transition, _, _ = chain_gates(conv, x, edge_index)
    torch.testing.assert_close(source, torch.full_like(source, 0.5))
    torch.testing.assert_close(transition, torch.full_like(transition, 0.5))
    default = chain_gates(pg.PLSTMConv(16, 16, heads=4, mode=mode), x, edge_index)[1]
    assert bool(default.min() > 0.98)  # the default's long reach


def test_official_projections():
    """The official graph layer's q, k, v and output projections: biases, "small init" weights
    N(0, 2 / (5 fan_in)), and no 1/sqrt(K) on q (which the per-head RMSNorm would undo in the
    forward pass, but not in the gradients)."""
    torch.manual_seed(0)
    conv = pg.PLSTMConv(64, 64, heads=2, mode="D", projections="official")
    for lin in (conv.lin_query, conv.lin_key, conv.lin_value, conv.lin_out):
        assert lin.bias is not None and not bool(lin.bias.any())
        assert abs(float(lin.weight.std()) - math.sqrt(2 / (5 * 64))) < 0.01
    inputs = torch.randn(5, 64)
    q, _, _, _ = conv.project(inputs)
    torch.testing.assert_close(q.flatten(1), conv.lin_query(inputs))  # not divided by sqrt(K)
    assert "projections='official'" in repr(conv)
    conv.reset_parameters()  # keeps the official initialisation
    assert abs(float(conv.lin_key.weight.std()) - math.sqrt(2 / (5 * 64))) < 0.01
    with pytest.raises(ValueError, match="projections must be one of default, official"):
        pg.PLSTMConv(16, 16, projections="small")


@pytest.mark.parametrize("over", ["successors", "predecessors"])
def test_p_mode_transitions_respect_the_bound(over):
    x, edge_index = graph(RING_SMILES[1])
    conv = pg.PLSTMConv(16, 16, heads=2, mode="P", p_mode_over=over)
    g = conv.line_graph(x, edge_index)
    group = g.line_index[0 if over == "successors" else 1]
    for std in (0.0, 3.0):  # at initialisation (saturated) and with large random weights
        torch.nn.init.normal_(conv.lin_gate.weight, std=std)
        _, transition, _, _ = conv.gates(x, g)
        total = torch.zeros(g.num_edges, 2).index_add(0, group, transition.abs())
        total = total.detach()[torch.bincount(group, minlength=g.num_edges) > 0]
        assert bool((total < 1).all()) and float(total.max()) > 0.5
    # At initialisation a line node with one successor (predecessor) passes on (takes in) 50 /
    # 50.5 of a cell.
    torch.nn.init.zeros_(conv.lin_gate.weight)
    _, transition, _, _ = conv.gates(x, g)
    single = torch.bincount(group, minlength=g.num_edges)[group] == 1
    torch.testing.assert_close(transition[single], torch.full_like(transition[single], 50 / 50.5))


def test_p_mode_normalisation_groups_by_hand():
    """0 -> 2 <- 1, 2 -> 3: line nodes (0, 2) and (1, 2) have one successor each, (2, 3), which
    has both as predecessors. Raw gates 1 on the line edge from (0, 2), 3 on the one from (1, 2)."""
    g = pg.prepare_dag(torch.tensor([[0, 1, 2], [2, 2, 3]]), 4, mode="P", orientation="given")
    assert g.num_line_edges == 2
    raw = torch.where(g.edge_index[0, g.line_index[0]] == 0, 1.0, 3.0)[:, None]
    torch.testing.assert_close(p_mode_transition(raw, g), raw / (0.5 + raw))
    torch.testing.assert_close(p_mode_transition(raw, g, over="predecessors"), raw / (0.5 + 4.0))


def test_p_mode_over_reaches_the_layers_of_a_model():
    model = GraphModel("plstm", 2, node_channels=7, hidden=16, layers=2,
                       model_options={"p_mode_over": "predecessors"})
    convs = [m for m in model.modules() if isinstance(m, pg.PLSTMConv)]
    assert [c.p_mode_over for c in convs] == ["predecessors"] * 2
    assert "p_mode_over='predecessors'" in repr(convs[0])
    with pytest.raises(ValueError, match="p_mode_over must be one of successors, predecessors"):
        GraphModel("plstm", 2, node_channels=7, model_options={"p_mode_over": "in"})
    with pytest.raises(ValueError, match="p_mode_over must be one of"):
        pg.PLSTMConv(16, 16, p_mode_over="incoming")


def test_edge_features_follow_their_edges():
    x, edge_index = graph()
    pair = edge_index.min(0).values * 100 + edge_index.max(0).values  # same for both directions
    edge_attr = torch.stack([pair.sin(), pair.cos(), (pair % 7).float()], dim=1)
    conv = pg.PLSTMConv(16, 8, heads=2, edge_dim=3)
    for p in conv.parameters():
        torch.nn.init.normal_(p)
    perm = torch.randperm(edge_index.size(1))  # same graph, columns shuffled with their features
    out = conv(x, edge_index, edge_attr)
    shuffled = conv(x, edge_index[:, perm], edge_attr[perm])
    torch.testing.assert_close(out, shuffled, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="edge_attr is required"):
        conv(x, edge_index)


def test_gradients_reach_every_parameter():
    x, edge_index = graph()
    for mode in "PD":
        conv = pg.PLSTMConv(16, 8, heads=2, mode=mode, edge_dim=2)
        conv(x, edge_index, torch.randn(edge_index.size(1), 2)).square().sum().backward()
        for name, p in conv.named_parameters():
            assert p.grad is not None and bool(p.grad.abs().sum() > 0), name


def test_backends_agree_inside_the_layer():
    x, edge_index = graph()
    conv = pg.PLSTMConv(16, 8, heads=2, mode="P").double()
    for p in conv.parameters():
        torch.nn.init.normal_(p, std=0.3)
    outs = []
    for backend in ("reference", "levels", "parallel", "auto"):
        conv.backend = backend
        outs.append(conv(x.double(), edge_index))
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], atol=1e-10, rtol=0)


def test_reverse_and_line_graph_checks():
    x, edge_index = graph()
    conv = pg.PLSTMConv(16, 8, heads=2, mode="P", reverse=True)
    g = pg.prepare_dag(edge_index, x.size(0), mode="P").reverse()
    torch.testing.assert_close(conv(x, edge_index), conv(x, g))
    with pytest.raises(ValueError, match="D-mode LineGraph but this layer has mode='P'"):
        conv(x, pg.prepare_dag(edge_index, x.size(0), mode="D"))
    with pytest.raises(ValueError, match="has 3 nodes but x has"):
        conv(x, pg.prepare_dag(torch.tensor([[0], [1]]), 3))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="mode must be one of"):
        pg.PLSTMConv(4, 4, mode="Q")
    with pytest.raises(ValueError, match="backend must be one of"):
        pg.PLSTMConv(4, 4, backend="fast")
    with pytest.raises(ValueError, match=r"out_channels \(10\) must be divisible by heads \(4\)"):
        pg.PLSTMConv(4, 10, heads=4)
    for kwargs, name in [(dict(heads=0), "heads"), (dict(key_dim=0), "key_dim"),
                         (dict(value_dim=0), "value_dim"), (dict(edge_dim=0), "edge_dim"),
                         (dict(in_channels=0), "in_channels"), (dict(heads=2.0), "heads")]:
        args = dict(in_channels=4, out_channels=4) | kwargs
        with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
            pg.PLSTMConv(**args)
    assert pg.PLSTMConv(4, 4, heads=2, key_dim=3).lin_query.out_features == 6


def test_bad_inputs_name_the_argument():
    x, edge_index = graph()
    conv = pg.PLSTMConv(16, 8, heads=2, edge_dim=3)
    edges = edge_index.size(1)
    for rows in (edges + 1, edges - 1):  # more rows used to run silently on the wrong ones
        with pytest.raises(ValueError, match=f"edge_attr has {rows} rows but edge_index has "
                                             f"{edges} columns"):
            conv(x, edge_index, torch.randn(rows, 3))
    g = pg.prepare_dag(edge_index, x.size(0))
    with pytest.raises(ValueError, match="edge_attr has 2 rows but the LineGraph refers to"):
        conv(x, g, torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"edge_attr must have shape \[\*, 3\]"):
        conv(x, edge_index, torch.randn(edges, 2))
    with pytest.raises(ValueError, match=r"x must have shape \[\*, 16\], got \[\d+, 15\]"):
        conv(x[:, :15], edge_index, torch.randn(edges, 3))
    with pytest.raises(ValueError, match="x must be a floating-point tensor, got torch.int64"):
        conv(x.long(), edge_index, torch.randn(edges, 3))


@pytest.mark.parametrize("mode", ["P", "D"])
def test_empty_graph_gives_empty_output(mode):
    conv = pg.PLSTMConv(16, 8, heads=2, mode=mode, edge_dim=3)
    x = torch.randn(0, 16, requires_grad=True)
    out = conv(x, torch.empty(2, 0, dtype=torch.long), torch.empty(0, 3))
    assert out.shape == (0, 8)
    out.sum().backward()  # the parallel backward used to index row 0 of an empty tensor
    assert x.grad.shape == (0, 16)
    # Nodes without edges: only the Direct term (and no crash on an edgeless graph).
    single = pg.PLSTMConv(16, 8, heads=2, mode=mode)
    assert single(torch.randn(3, 16), torch.empty(2, 0, dtype=torch.long)).shape == (3, 8)


def test_block_and_plan():
    x, edge_index = graph()
    assert pg.nn.plstm_layer_plan(4) == [("P", False), ("D", True), ("P", False), ("D", True)]
    block = pg.PLSTMBlock(16, heads=4, mode="D", reverse=True)
    assert block(x, edge_index).shape == x.shape
    assert "PLSTMConv(16, 16, heads=4, mode='D', edge_dim=None, reverse=True)" in repr(block)
