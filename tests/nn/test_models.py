import math

import pytest
import torch
from torch_geometric.data import Batch, Data

import plstm_graph as pg
from plstm_graph.nn import DegreeEncoding, GraphModel, count_parameters

#: The models of round 1, compared at equal width and depth.
BUILTIN = ("plstm", "gin", "gcn", "gat", "attention")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def molecule_like(num_nodes: int, seed: int, ogb: bool) -> Data:
    """A ring with a tail: undirected, both directions stored, like PyG molecules."""
    gen = torch.Generator().manual_seed(seed)
    ring = torch.arange(num_nodes - 1)
    edges = torch.stack([ring, (ring + 1) % (num_nodes - 1)])
    edges = torch.cat([edges, torch.tensor([[0], [num_nodes - 1]])], 1)
    edge_index = torch.cat([edges, edges.flip(0)], 1)
    if ogb:  # integer atom (9 columns) and bond (3 columns) features
        x = torch.randint(0, 2, (num_nodes, 9), generator=gen)
        edge_attr = torch.randint(0, 2, (edge_index.size(1), 3), generator=gen)
    else:
        x = torch.rand(num_nodes, 5, generator=gen)
        edge_attr = torch.rand(edge_index.size(1), 2, generator=gen)
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr, y=torch.tensor([[1.0]]))


def make_batch(ogb=False, prepare=False, sizes=(5, 8, 6)):
    graphs = [molecule_like(n, i, ogb) for i, n in enumerate(sizes)]
    if prepare:
        graphs = [pg.PrepareDAG()(g) for g in graphs]
    return Batch.from_data_list(graphs)


@pytest.mark.parametrize("mixer", BUILTIN)
@pytest.mark.parametrize("features,edges", [("onehot", 0), ("onehot", 2), ("ogb", 3)])
def test_forward_backward_every_mixer(mixer, features, edges):
    torch.manual_seed(0)
    batch = make_batch(ogb=features == "ogb", prepare=mixer == "plstm")
    model = GraphModel(mixer, 3, features=features, node_channels=5, edge_channels=edges,
                       hidden=16, layers=2, heads=2)
    assert model(batch).abs().max() == 0  # the head starts at zero: the mean prediction
    with_random_head(model)  # as after a first step, to see gradients flow
    out = model(batch)
    assert out.shape == (3, 3)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    # The head and the first block's input side both get a gradient.
    assert model.head.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.node_encoder.parameters())


@pytest.mark.parametrize("mixer", BUILTIN)
@pytest.mark.parametrize("features,edges", [("onehot", 2), ("ogb", 3)])
def test_a_batch_without_any_edge(mixer, features, edges):
    """Single-atom molecules (FreeSolv's chloride, methane) can fill a whole batch: edge
    features of 0 rows are encoded like any others."""
    ogb = features == "ogb"
    graphs = [Data(x=torch.randint(0, 2, (1, 9)) if ogb else torch.rand(1, 5),
                   edge_index=torch.zeros(2, 0, dtype=torch.long),
                   edge_attr=torch.zeros(0, edges, dtype=torch.long if ogb else torch.float),
                   y=torch.tensor([[1.0]])) for _ in range(2)]
    if mixer == "plstm":
        graphs = [pg.PrepareDAG()(g) for g in graphs]
    model = GraphModel(mixer, 3, features=features, node_channels=5, edge_channels=edges,
                       hidden=16, layers=2, heads=2)
    with_random_head(model)
    out = model(Batch.from_data_list(graphs))
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    out.square().sum().backward()


@pytest.mark.parametrize("mixer", ("plstm", "gin"))
def test_the_official_head_and_edge_features_work_for_any_model(mixer):
    """``head="mlp"`` (no final norm, Linear-ReLU-Linear) and ``edge_features="ends"`` ((x_u +
    x_v) / 2 even where the data has bond features) are GraphModel's, not the mixer's."""
    torch.manual_seed(0)
    batch = make_batch(prepare=mixer == "plstm")
    model = GraphModel(mixer, 3, node_channels=5, edge_channels=2, hidden=16, layers=2, heads=2,
                       model_options={"head": "mlp", "edge_features": "ends"})
    assert model.edge_encoder is None and isinstance(model.norm, torch.nn.Identity)
    assert repr(model).endswith("head='mlp')")
    x, edge_attr = model.encode(batch)
    src, dst = batch.edge_index
    torch.testing.assert_close(edge_attr, (x[src] + x[dst]) / 2)
    out = model(batch)
    assert out.shape == (3, 3) and out.abs().max() > 0  # PyTorch's default init, not zero
    out.square().sum().backward()
    assert model.head[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="edge_features must be one of encoded, ends"):
        GraphModel(mixer, 3, node_channels=5, edge_features="bonds")


def with_random_head(model: GraphModel) -> GraphModel:
    """The head starts at zero (every output equal); comparisons need it to see the blocks."""
    torch.nn.init.normal_(model.head.weight)
    return model


def test_plstm_model_uses_the_precomputed_line_graphs_like_fresh_ones():
    torch.manual_seed(0)
    model = with_random_head(GraphModel("plstm", 2, node_channels=5, hidden=16, layers=4, heads=2))
    assert model.plan == pg.nn.plstm_layer_plan(4)
    fresh, prepared = make_batch(), make_batch(prepare=True)
    assert not hasattr(fresh, "dag_edge_index") and hasattr(prepared, "dag_edge_index")
    torch.testing.assert_close(model(prepared), model(fresh))


@pytest.mark.parametrize("pooling", ["mean", "sum", "max"])
def test_graphs_are_pooled_independently(pooling):
    torch.manual_seed(0)
    model = with_random_head(GraphModel("plstm", 1, node_channels=5, hidden=16, layers=2,
                                        heads=2, pooling=pooling)).eval()
    batch = make_batch(prepare=True)
    alone = torch.cat([model(Batch.from_data_list([g])) for g in batch.to_data_list()])
    torch.testing.assert_close(model(batch), alone)


def test_degree_encoding_is_the_sinusoid_of_the_neighbour_count():
    edge_index = torch.tensor([[0, 1, 0, 2], [1, 0, 2, 0]])  # node 0 has 2 neighbours
    enc = DegreeEncoding(4)(edge_index, 3)
    expected = torch.tensor([[math.sin(2), math.cos(2), math.sin(2 / 100), math.cos(2 / 100)],
                             [math.sin(1), math.cos(1), math.sin(1 / 100), math.cos(1 / 100)]])
    torch.testing.assert_close(enc[:2], expected)


def test_regression_outputs_are_in_target_units():
    torch.manual_seed(0)
    model = with_random_head(GraphModel("gin", 1, node_channels=5, hidden=16, layers=1))
    batch = make_batch()
    raw = model(batch)
    model.set_target_scale(torch.tensor([100.0]), torch.tensor([10.0]))
    torch.testing.assert_close(model(batch), raw * 10 + 100)


def test_parameter_counts_are_comparable_across_mixers():
    counts = {mixer: count_parameters(GraphModel(mixer, 2, node_channels=7, edge_channels=4,
                                                 hidden=64, layers=4))
              for mixer in BUILTIN}
    assert max(counts.values()) < 1.6 * min(counts.values()), counts
    assert max(counts.values()) < 300_000, counts  # the paper keeps every model under 300k


@pytest.mark.parametrize("kwargs,match", [
    ({"model": "mlp"}, "model must be one of plstm, gin"),
    ({"pooling": "min"}, "pooling must be one of mean, sum, max"),
    ({"hidden": 18, "heads": 4}, "divisible by heads"),
    ({"layers": 0}, "layers must be a positive int"),
    ({"task_level": "edge"}, "task_level must be one of graph, node"),
    ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\), got 1.0"),
    ({"dropout": "0.1"}, "dropout must be a number"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    args = {"model": "gin", "out_channels": 1, "node_channels": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        GraphModel(**args)


def test_plstm_model_prepares_only_the_line_graphs_its_plan_reads():
    model = GraphModel("plstm", 1, node_channels=5, hidden=16, layers=4, heads=2)
    transform = model.transform()
    assert transform.line_graphs == tuple(dict.fromkeys(model.plan)) == (("P", False), ("D", True))
    data = transform(molecule_like(7, 0, ogb=False))
    assert data.has_line_graph("P", False) and data.has_line_graph("D", True)
    assert not data.has_line_graph("D", False) and not data.has_line_graph("P", True)
    assert GraphModel("gin", 1, node_channels=5, hidden=16).transform() is None


def test_edge_attr_rows_must_match_the_edges():
    model = GraphModel("gin", 1, node_channels=5, edge_channels=2, hidden=16, layers=1)
    batch = make_batch()
    batch.edge_attr = batch.edge_attr[:-1]
    with pytest.raises(ValueError, match="edge_attr has 37 rows but edge_index has 38 columns"):
        model(batch)


def test_node_level_models_predict_one_row_per_node():
    torch.manual_seed(0)
    model = GraphModel("plstm", 5, node_channels=5, hidden=16, layers=2, heads=2,
                       task_level="node", orientation="given")
    trees = [Data(x=torch.rand(n, 5), edge_index=torch.stack([torch.arange(1, n),
                                                               torch.arange(1, n) // 2]))
             for n in (5, 4)]  # child -> parent, as trees point to their root
    out = model(Batch.from_data_list(trees))
    assert out.shape == (9, 5)


@pytest.mark.parametrize("mixer", ["plstm", "gin"])
def test_dropout_acts_while_training_only(mixer):
    torch.manual_seed(0)
    batch = make_batch(prepare=mixer == "plstm")
    model = GraphModel(mixer, 3, node_channels=5, edge_channels=2, hidden=16, layers=2, heads=2,
                       dropout=0.5)
    with_random_head(model)
    plain = GraphModel(mixer, 3, node_channels=5, edge_channels=2, hidden=16, layers=2, heads=2)
    plain.load_state_dict(model.state_dict())  # dropout adds no parameters
    model.eval(), plain.eval()
    torch.testing.assert_close(model(batch), plain(batch), rtol=0, atol=0)
    model.train()
    torch.manual_seed(1)
    first = model(batch)
    torch.manual_seed(2)
    assert not torch.allclose(first, model(batch))  # other masks, other outputs
    torch.manual_seed(1)
    torch.testing.assert_close(model(batch), first, rtol=0, atol=0)
    assert "dropout=0.5" in repr(model) and "dropout" not in repr(plain)


@pytest.mark.parametrize("name", ["plstm", "attention"])
def test_model_with_a_local_layer_trains_both_parts(name):
    torch.manual_seed(0)
    batch = make_batch(prepare=True)
    model = GraphModel(name, 3, node_channels=5, edge_channels=2, hidden=16, layers=2,
                       heads=2, model_options={"local": "gin"})
    plain = GraphModel(name, 3, node_channels=5, edge_channels=2, hidden=16, layers=2, heads=2)
    # One GINE (two 16 x 16 linear layers and eps) per block on top of the global layers'.
    assert count_parameters(model) - count_parameters(plain) == 2 * (2 * (16 * 16 + 16) + 1)
    with_random_head(model)
    model(batch).square().sum().backward()
    for block in model.blocks:
        assert block.local.nn[0].weight.grad.abs().sum() > 0
        assert block.mixer.global_layer.lin_value.weight.grad.abs().sum() > 0
    weight = model.blocks[0].local.nn[0].weight.detach().clone()
    model.reset_parameters()
    assert not torch.equal(model.blocks[0].local.nn[0].weight, weight)
    with pytest.raises(ValueError, match="local must be one of none, gin"):
        GraphModel(name, 3, node_channels=5, model_options={"local": "gcn"})
