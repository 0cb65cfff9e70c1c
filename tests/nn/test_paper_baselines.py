"""The pLSTM paper's baselines (``block="plain"``, ``head="per-layer"``, ``degree="none"``): built
as the official graph code builds them, and computing what its ``forward`` computes."""
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.datasets import FakeDataset
from torch_geometric.nn import GATConv, GCNConv, GINConv, global_add_pool

from plstm_graph.nn import GraphModel, PlainConvBlock, count_parameters
from plstm_graph.train import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def make_batch(graphs: int) -> Batch:
    """Random undirected graphs of 5 node and 2 edge features (PyG's ``FakeDataset``)."""
    torch.manual_seed(1)
    data = FakeDataset(num_graphs=graphs, avg_num_nodes=8, num_channels=5, edge_dim=2)
    return Batch.from_data_list(list(data))


def paper_model(model: str, node_channels: int = 7, edge_channels: int = 4, **kwargs):
    """The ``--preset paper`` baseline on MUTAG-shaped data (7 node and 4 bond features, 2
    classes)."""
    config = TrainConfig(dataset="MUTAG", model=model, preset="paper")
    settings = dict(hidden=config.hidden, layers=config.layers, heads=config.heads,
                    pooling=config.pooling, model_options=config.model_options)
    return GraphModel(model, 2, node_channels=node_channels, edge_channels=edge_channels,
                      **{**settings, **kwargs})


def test_the_paper_baselines_have_the_official_models_parameters():
    # The official GIN, width 128, 4 layers, on MUTAG: 153,228 parameters, of which its unused
    # Linear-ReLU-Linear decoder holds 128 * 128 + 128 + 128 * 2 + 2 = 16,770 (SPEC section 6:
    # "153k"). GCN and GAT (one head) read out through that decoder.
    assert count_parameters(paper_model("gin")) == 153_228 - 16_770
    encoder, decoder = 7 * 128 + 128, 16_770
    assert count_parameters(paper_model("gcn")) == encoder + 4 * (128 * 128 + 128) + decoder
    gat_layer = 128 * 128 + 3 * 128  # shared projection, the two attention vectors, the bias
    assert count_parameters(paper_model("gat")) == encoder + 4 * gat_layer + decoder
    gin = paper_model("gin")
    assert gin.degree_encoding is None and isinstance(gin.norm, torch.nn.Identity)
    assert len(gin.head) == 5  # the input's read-out and one per layer
    assert all(isinstance(block, PlainConvBlock) and isinstance(block.conv, GINConv)
               and block.norm is not None and float(block.conv.eps) == 0.0
               and not isinstance(block.conv.eps, torch.nn.Parameter) for block in gin.blocks)
    gat = paper_model("gat")
    assert all(isinstance(block.conv, GATConv) and block.conv.heads == 1
               and block.conv.lin_edge is None and block.norm is None for block in gat.blocks)
    assert repr(gin.blocks[0]).startswith("PlainConvBlock(GINConv(") and "batch_norm=True" in \
        repr(gin.blocks[0])
    assert "head='per-layer', degree='none'" in repr(gin)


@pytest.mark.parametrize("training", (True, False))
def test_the_paper_gin_computes_the_official_forward(training):
    """ml-jku/plstm_experiments ``plstm_graph/src/models/gin.py``, written out with the model's
    own modules: ``x = enc(x)``; ``x = ReLU(BN(GINConv(x)))`` per layer; the score is the sum
    over the input and every layer of ``Linear_l(sum_pool(h_l))``."""
    torch.manual_seed(0)
    batch = make_batch(4)
    model = paper_model("gin", node_channels=5, edge_channels=2, hidden=16).train(training)
    out = model(batch)

    hidden = model.node_encoder(batch.x)
    score = model.head[0](global_add_pool(hidden, batch.batch))
    for block, linear in zip(model.blocks, model.head[1:]):
        hidden = torch.relu(block.norm(block.conv(hidden, batch.edge_index)))
        score = score + linear(global_add_pool(hidden, batch.batch))
    torch.testing.assert_close(out, score)
    out.square().sum().backward()
    assert all(head.weight.grad.abs().sum() > 0 for head in model.head)
    assert model.edge_encoder is None  # bond features unused, as in the official code


@pytest.mark.parametrize("name,conv", (("gcn", GCNConv), ("gat", GATConv)))
def test_the_paper_gcn_and_gat_compute_the_official_forward(name, conv):
    """``src/models/gcn.py`` and ``gat.py``: ``x = ReLU(conv(x))`` per layer, sum pooling, then
    the Linear-ReLU-Linear decoder."""
    torch.manual_seed(0)
    batch = make_batch(3)
    model = paper_model(name, node_channels=5, edge_channels=2, hidden=16)
    hidden = model.node_encoder(batch.x)
    for block in model.blocks:
        assert isinstance(block.conv, conv)
        hidden = torch.relu(block.conv(hidden, batch.edge_index))
    torch.testing.assert_close(model(batch), model.head(global_add_pool(hidden, batch.batch)))


def test_the_per_layer_head_reads_every_node_on_node_level_tasks():
    torch.manual_seed(0)
    batch = make_batch(2)
    model = GraphModel("gcn", 3, node_channels=5, hidden=16, layers=2, task_level="node",
                       model_options={"head": "per-layer"})
    hidden = [model.encode(batch)[0]]
    for block in model.blocks:
        hidden.append(block(hidden[-1], batch.edge_index))
    expected = sum(linear(h) for linear, h in zip(model.head, hidden))
    torch.testing.assert_close(model(batch), expected)
    assert model(batch).shape == (batch.num_nodes, 3)


def test_plain_blocks_and_the_degree_option_are_checked():
    with pytest.raises(ValueError, match="block must be one of residual, plain; got 'deep'"):
        GraphModel("gin", 2, node_channels=5, model_options={"block": "deep"})
    with pytest.raises(ValueError, match="degree must be one of sinusoidal, none"):
        GraphModel("gin", 2, node_channels=5, degree="onehot")
    with pytest.raises(ValueError, match="model_options .* do not fit model 'plstm'"):
        GraphModel("plstm", 2, node_channels=5, model_options={"block": "plain"})
    # The residual stack is the default, with edge features for GIN and GAT.
    gin = GraphModel("gin", 2, node_channels=5, edge_channels=2, hidden=16, layers=1)
    assert type(gin.blocks[0]).__name__ == "ConvBlock" and gin.spec.supports_edge_attr
    assert gin.degree_encoding is not None
