import math

import pytest
import torch
from torch_geometric.loader import DataLoader

from plstm_graph.data.ape import grid_graph, load_ape
from plstm_graph.graph.grid import CORNERS, grid_line_graph
from plstm_graph.nn import plstm_2d, vit  # noqa: F401  (registers the image models)
from plstm_graph.nn.models import GraphModel, count_parameters
from plstm_graph.nn.plstm_2d import PLSTM2DConv, to_corner
from plstm_graph.nn.vision import GridPositionEmbedding, corner_pool, grid_shape, sincos_2d
from plstm_graph.ops.plstm import plstm
from plstm_graph.testing import assert_multitree, assert_same_outputs_and_grads

IMAGE_MODELS = ("plstm-2d", "plstm-2d-d", "vit")


def grid_pos(height, width, count):
    return grid_graph(height, width)[1].repeat(count, 1)


def corner_by_corner(conv: PLSTM2DConv, x, pos, count):
    """The layer's definition, one corner's own line graph at a time (original coordinates)
    with the per-edge reference kernel."""
    height, width = grid_shape(pos, count)
    shape = (x.size(0), conv.heads, conv.head_dim)
    q = conv.lin_query(x).view(shape) / math.sqrt(conv.head_dim)
    k, v = conv.lin_key(x).view(shape), conv.lin_value(x).view(shape)
    direct = torch.sigmoid(conv.lin_direct(x))
    gates = conv.lin_gates(x).view(x.size(0), len(CORNERS), conv.heads, -1)
    h = 0
    for c, corner in enumerate(CORNERS):
        graph = grid_line_graph(height, width, corner, "P", count).to(x.device)
        source, transition, mark = conv.edge_gates(gates[:, c], graph)
        h = h + plstm(q, k, v, source, transition, mark, direct, graph, backend="reference")
    h = torch.nn.functional.rms_norm(h / 4, (conv.head_dim,), eps=1e-5) * conv.norm_weight
    return conv.lin_out(h.reshape(x.size(0), -1))


@pytest.mark.parametrize("mode", ["P", "D"])
def test_four_corners_in_one_sweep_equal_each_corner_alone(mode, one_thread):
    torch.manual_seed(0)
    conv = PLSTM2DConv(8, heads=2, mode=mode).double()
    for param in conv.parameters():  # away from the initial (saturated) gates
        torch.nn.init.normal_(param, std=0.5)
    pos = grid_pos(3, 4, 2)
    x = torch.randn(pos.size(0), 8, dtype=torch.float64)
    assert_same_outputs_and_grads(lambda x, *weights: conv(x, pos, 2),
                                  lambda x, *weights: corner_by_corner(conv, x, pos, 2),
                                  [x], names=["x"])
    fast = torch.autograd.grad(conv(x, pos, 2).square().sum(), list(conv.parameters()))
    slow = torch.autograd.grad(corner_by_corner(conv, x, pos, 2).square().sum(), list(conv.parameters()))
    for (name, _), a, b in zip(conv.named_parameters(), fast, slow):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0, msg=lambda m, name=name: f"{name}: {m}")


def test_p_mode_splits_the_flow_and_d_mode_keeps_a_multitree():
    torch.manual_seed(1)
    graph = grid_line_graph(4, 5, "top-left", "P")
    for mode in ("P", "D"):
        conv = PLSTM2DConv(8, heads=2, mode=mode)
        torch.nn.init.normal_(conv.lin_gates.weight, std=2.0)
        with torch.no_grad():
            gates = conv.lin_gates(torch.randn(20, 8)).view(20, 4, 2, -1)[:, 0]
            source, transition, mark = conv.edge_gates(gates, graph)
        assert source.shape == mark.shape == (graph.num_edges, 2)
        assert transition.shape == (graph.num_line_edges, 2)
        e_in = graph.line_index[0]
        if mode == "P":  # every line node passes on at most all it holds
            outflow = torch.zeros(graph.num_edges, 2).index_add(0, e_in, transition.abs())
            assert float(outflow.max()) <= 1 + 1e-6
            interior = torch.bincount(e_in, minlength=graph.num_edges) == 2
            fraction = torch.sigmoid(gates[..., 3])[graph.edge_index[1]]
            tau = torch.tanh(5 * (1 + gates[graph.edge_index[1], :, 2]))
            torch.testing.assert_close(outflow[interior], tau[interior].abs())
            assert bool(((fraction > 0) & (fraction < 1)).all())
        else:  # the official D-mode: straight on, or turn from horizontal to vertical
            kept = graph.line_index[:, (transition != 0).all(-1)]
            assert kept.size(1) < graph.num_line_edges
            assert_multitree(kept, graph.num_edges)


def test_to_corner_flips_into_top_left_coordinates():
    values = torch.arange(2 * 6).view(12, 1)  # two 2 x 3 grids
    assert to_corner(values, 2, 3, "top-left").view(-1).tolist() == list(range(12))
    assert to_corner(values, 2, 3, "top-right").view(-1)[:6].tolist() == [2, 1, 0, 5, 4, 3]
    assert to_corner(values, 2, 3, "bottom-left").view(-1)[6:].tolist() == [9, 10, 11, 6, 7, 8]
    for corner in CORNERS:  # its own inverse
        assert torch.equal(to_corner(to_corner(values, 2, 3, corner), 2, 3, corner), values)


def test_position_embedding_extends_to_larger_grids():
    embedding = GridPositionEmbedding(16, grid=4)
    pos = grid_pos(4, 4, 3)
    x = torch.zeros(pos.size(0), 16)
    torch.testing.assert_close(embedding(x, pos, 3), embedding.weight.repeat(3, 1))
    larger = embedding(torch.zeros(64, 16), grid_pos(8, 8, 1), 1)
    assert larger.shape == (64, 16) and bool(larger.isfinite().all())
    sincos = GridPositionEmbedding(16, grid=4, kind="sincos")
    assert torch.equal(sincos(torch.zeros(36, 16), grid_pos(6, 6, 1), 1), sincos_2d(6, 6, 16))
    assert torch.equal(sincos_2d(6, 6, 16)[:4], sincos_2d(4, 4, 16)[:4])  # same row 0, any size
    assert not any(p.requires_grad for p in sincos.parameters())
    start = GridPositionEmbedding(16, grid=4, kind="learned-sincos")  # trainable, sincos at init
    assert torch.equal(start.weight.detach(), sincos_2d(4, 4, 16)) and start.weight.requires_grad
    assert start.table(8, 8).shape == (64, 16)
    with pytest.raises(ValueError, match="channels"):
        GridPositionEmbedding(18, kind="learned-sincos")
    with pytest.raises(ValueError, match="kind"):
        GridPositionEmbedding(16, kind="rope")


def test_grid_shape_and_corner_pool():
    pos = grid_pos(3, 5, 2)
    assert grid_shape(pos, 2) == (3, 5)
    x = torch.randn(30, 4)
    grids = x.view(2, 3, 5, 4)
    want = (grids[:, 0, 0] + grids[:, 0, 4] + grids[:, 2, 0] + grids[:, 2, 4]) / 4
    torch.testing.assert_close(corner_pool(x, pos, 2), want)
    with pytest.raises(ValueError, match="pos"):
        grid_shape(pos, 3)
    with pytest.raises(ValueError, match="row-major"):
        grid_shape(pos.flip(0), 2)


@pytest.fixture(scope="module")
def ape():
    bench = load_ape(64, patch=16, num_train=6, num_valid=2, num_test=2, num_extrapolation=3)
    return bench, bench.extrapolation()  # 4 x 4 patches, and 8 x 8 at twice the size


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_models_run_at_the_training_size_and_extrapolate(name, ape, one_thread):
    bench, extrapolation = ape
    torch.manual_seed(0)
    model = GraphModel(name, 2, features="onehot", node_channels=bench.num_node_features,
                       hidden=16, layers=2, heads=2, orientation="given")
    train = next(iter(DataLoader(bench.dataset[bench.split()["train"]], batch_size=6)))
    out = model(train)
    assert out.shape == (6, 2) and bool(out.isfinite().all())
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    larger = next(iter(DataLoader(extrapolation, batch_size=3)))
    assert larger.num_nodes == 3 * 64
    with torch.no_grad():
        assert model(larger).shape == (3, 2)
        # One image alone gives what it gives in a batch.
        torch.testing.assert_close(model(next(iter(DataLoader(extrapolation[:1])))), model(larger)[:1],
                                   atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_models_pool_by_max(name):
    assert GraphModel(name, 2, node_channels=4, hidden=8, layers=1, heads=2).pooling == "max"


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_only_the_vit_adds_a_position_table_by_default(name):
    # Chosen on APE's validation images (README, APE round 12): the pLSTMs extrapolate
    # better without one; the ViT cannot place a patch without one.
    model = GraphModel(name, 2, node_channels=4, hidden=8, layers=1, heads=2)
    assert model.extra.kind == ("learned-sincos" if name == "vit" else "none")


def test_models_are_comparable_in_size():
    counts = {name: count_parameters(GraphModel(name, 2, features="onehot", node_channels=64,
                                                hidden=64, layers=2, heads=4, orientation="given"))
              for name in IMAGE_MODELS}
    assert max(counts.values()) < 1.2 * min(counts.values()), counts


@pytest.mark.parametrize("mode", ["P", "D"])
def test_official_projections_make_the_layer_heard_at_initialisation(mode):
    """The official small init (biases, N(0, 2 / (5 fan_in))) on q / k / v / out: the layer's
    output on unit-scale features starts at a tenth of their size. With std 0.02 it starts about
    1000 times smaller, below the per-head norm's epsilon: the layer is silent."""
    torch.manual_seed(0)
    x, pos = torch.randn(4 * 64, 32), grid_pos(8, 8, 4)
    official = PLSTM2DConv(32, 4, mode)  # the default
    for lin in (official.lin_query, official.lin_key, official.lin_value, official.lin_out):
        assert lin.bias is not None and not bool(lin.bias.any())
        assert abs(float(lin.weight.std()) - math.sqrt(2 / (5 * 32))) < 0.01
    rms = {name: float(conv(x, pos, 4).pow(2).mean().sqrt())
           for name, conv in (("official", official), ("default", PLSTM2DConv(32, 4, mode, projections="default")))}
    assert rms["official"] > 0.05 and rms["default"] < 1e-3, rms


def test_layer_arguments_are_checked():
    assert repr(PLSTM2DConv(8, 2, "D")) == \
        "PLSTM2DConv(8, heads=2, mode='D', projections='official')"
    with pytest.raises(ValueError, match="mode"):
        PLSTM2DConv(8, 2, "Q")
    with pytest.raises(ValueError, match="projections must be one of default, official"):
        PLSTM2DConv(8, 2, projections="small")
    with pytest.raises(ValueError, match="projections"):
        GraphModel("plstm-2d", 2, node_channels=4, hidden=8, layers=1, heads=2,
                   model_options={"projections": "small"})
    with pytest.raises(ValueError, match="corner_pooling"):
        GraphModel("plstm-2d", 2, node_channels=4, hidden=8, layers=1, heads=2,
                   model_options={"corner_pooling": "no"})


@pytest.mark.parametrize("options,pooling,expected", [
    ({"corner_pooling": True}, None, "corners"),
    ({"corner_pooling": False}, "mean", "mean"),
    ({}, None, "max"),
])
def test_plstm_pools_the_corners_or_every_patch(ape, options, pooling, expected):
    """Corner pooling (the official model's) on request, else the run's pooling over every
    patch: max by default."""
    bench, _ = ape
    torch.manual_seed(0)
    model = GraphModel("plstm-2d-d", 2, features="onehot", node_channels=bench.num_node_features,
                       hidden=8, layers=1, heads=2, orientation="given", pooling=pooling,
                       model_options={"grid": 4, **options})
    batch = next(iter(DataLoader(bench.dataset[bench.split()["train"]], batch_size=6)))
    pooled = []
    model.head.register_forward_hook(lambda module, inputs, output: pooled.append(inputs[0]))
    model(batch)
    nodes = []
    model.norm.register_forward_hook(lambda module, inputs, output: nodes.append(output))
    model(batch)
    grids = nodes[0].view(6, 4, 4, -1)
    by_kind = {"corners": grids[:, [0, 0, -1, -1], [0, -1, 0, -1]].mean(1),
               "mean": grids.flatten(1, 2).mean(1), "max": grids.flatten(1, 2).amax(1)}
    torch.testing.assert_close(pooled[0], by_kind[expected])
    with pytest.raises(ValueError, match="divisible"):
        PLSTM2DConv(9, 2)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_position_table_sized_by_the_model_option(name):
    model = GraphModel(name, 2, features="onehot", node_channels=4, hidden=8, layers=1, heads=2,
                       orientation="given", model_options={"grid": 4, "position_embedding": "learned"})
    assert model.extra.weight.shape == (16, 8)
    assert GraphModel(name, 2, node_channels=4, hidden=8, layers=1, heads=2, orientation="given",
                      model_options={"position_embedding": "none"}).extra.weight is None
    with pytest.raises(ValueError, match="position_embedding"):
        GraphModel(name, 2, node_channels=4, hidden=8, layers=1, heads=2,
                   model_options={"position_embedding": "rope"})
    with pytest.raises(ValueError, match="grid"):
        GraphModel(name, 2, node_channels=4, hidden=8, layers=1, heads=2, model_options={"grid": 0})
