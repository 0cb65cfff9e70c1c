import pytest
import torch
from torch_geometric.data import Batch, Data

from plstm_graph.graph.node_levels import node_schedule, prepare_node_schedule
from plstm_graph.nn import GraphModel
from plstm_graph.nn.dag_lstm import DAGLSTMConv
from plstm_graph.nn.registry import model_names
from plstm_graph.testing import RING_SMILES, chain, molecule, random_dag, random_tree

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _outputs_and_grads(conv, x, edge_index):
    x = x.detach().clone().requires_grad_()
    out = conv(x, edge_index)
    cotangent = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    params = [p for p in conv.parameters()]
    return out, torch.autograd.grad(out, [x, *params], cotangent, materialize_grads=True)


@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("graph,orientation", [
    (molecule(RING_SMILES[2]), "index"),
    (random_tree(15, torch.Generator().manual_seed(0)), "given"),
    (random_dag(12, 30, torch.Generator().manual_seed(1)), "given"),
], ids=["aspirin", "tree", "random dag"])
def test_layer_matches_reference_backend(graph, orientation, reverse, attention):
    """Outputs and the gradients of the input and of every parameter, float64."""
    torch.manual_seed(0)
    conv = DAGLSTMConv(5, 6, reverse=reverse, attention=attention, orientation=orientation).double()
    if attention:
        torch.nn.init.normal_(conv.attention)  # non-uniform weights over predecessors
    reference = DAGLSTMConv(5, 6, reverse=reverse, attention=attention, orientation=orientation,
                            backend="reference").double()
    reference.load_state_dict(conv.state_dict())
    x = torch.randn(graph[1], 5, dtype=torch.float64)
    out, grads = _outputs_and_grads(conv, x, graph[0])
    want, want_grads = _outputs_and_grads(reference, x, graph[0])
    torch.testing.assert_close(out, want, atol=1e-10, rtol=0)
    for got, expected in zip(grads, want_grads):
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)


def test_directions_and_orientation():
    torch.manual_seed(0)
    edge_index, n = random_dag(10, 25, torch.Generator().manual_seed(2))
    edge_index = edge_index.unique(dim=1)  # "index" would merge duplicate edges
    x = torch.randn(n, 4)
    forward = DAGLSTMConv(4, 8, orientation="given")
    backward = DAGLSTMConv(4, 8, reverse=True, orientation="given")
    backward.load_state_dict(forward.state_dict())
    # reverse=True is the layer on the flipped DAG.
    torch.testing.assert_close(backward(x, edge_index), forward(x, edge_index.flip(0)))
    assert not torch.allclose(backward(x, edge_index), forward(x, edge_index))
    # "index" orients both stored directions lower -> higher, i.e. like the given DAG here;
    # "given" keeps a high -> low direction as it is.
    undirected = torch.cat([edge_index, edge_index.flip(0)], 1)
    by_index = DAGLSTMConv(4, 8)
    by_index.load_state_dict(forward.state_dict())
    torch.testing.assert_close(by_index(x, undirected), forward(x, edge_index))
    torch.testing.assert_close(by_index(x, edge_index.flip(0)), forward(x, edge_index))
    assert not torch.allclose(forward(x, edge_index.flip(0)), forward(x, edge_index))


def test_batch_equals_graph_by_graph():
    torch.manual_seed(0)
    conv = DAGLSTMConv(3, 4, attention=True, orientation="given")
    torch.nn.init.normal_(conv.attention)
    gen = torch.Generator().manual_seed(3)
    parts = [random_tree(6, gen), chain(1), random_dag(8, 20, gen), chain(5)]
    xs = [torch.randn(n, 3) for _, n in parts]
    batch = Batch.from_data_list([Data(x=x, edge_index=e) for x, (e, _) in zip(xs, parts)])
    separate = torch.cat([conv(x, e) for x, (e, _) in zip(xs, parts)])
    torch.testing.assert_close(conv(batch.x, batch.edge_index), separate)


def test_schedule_input_and_errors():
    conv = DAGLSTMConv(3, 4)
    edge_index, n = molecule(RING_SMILES[1])
    x = torch.randn(n, 3)
    torch.testing.assert_close(conv(x, prepare_node_schedule(edge_index, n)), conv(x, edge_index))
    with pytest.raises(ValueError, match="edge_index has 3 nodes but x has"):
        conv(x, node_schedule(*chain(3)))
    with pytest.raises(ValueError, match="not acyclic"):
        DAGLSTMConv(3, 4, orientation="given")(torch.randn(3, 3), torch.tensor([[0, 1, 2], [1, 2, 0]]))
    with pytest.raises(ValueError, match="orientation must be one of"):
        DAGLSTMConv(3, 4, orientation="up")
    with pytest.raises(ValueError, match="out_channels must be a positive integer"):
        DAGLSTMConv(3, 0)
    with pytest.raises(ValueError, match="backend must be one of"):
        DAGLSTMConv(3, 4, backend="loop")


def test_reset_parameters_and_repr():
    conv = DAGLSTMConv(3, 4, reverse=True, attention=True)
    assert repr(conv) == "DAGLSTMConv(3, 4, reverse=True, attention=True)"
    assert repr(DAGLSTMConv(3, 4)) == "DAGLSTMConv(3, 4)"
    before = conv.lin.weight.clone()
    torch.nn.init.normal_(conv.attention)
    conv.reset_parameters()
    assert not torch.equal(conv.lin.weight, before)
    assert torch.equal(conv.attention, torch.zeros(4))


@pytest.mark.parametrize("model", ["dag-lstm", "dag-lstm-attention"])
def test_registered_model_alternates_directions(model):
    assert model in model_names()
    graphs = [Data(x=torch.rand(n, 5), edge_index=torch.cat([e, e.flip(0)], 1), y=torch.rand(1, 1))
              for e, n in (molecule(s) for s in RING_SMILES[:3])]
    batch = Batch.from_data_list(graphs)
    net = GraphModel(model, out_channels=1, node_channels=5, hidden=16, layers=3)
    assert [block.conv.reverse for block in net.blocks] == [False, True, False]
    assert all((block.conv.attention is not None) == model.endswith("attention")
               for block in net.blocks)
    out = net(batch)
    assert out.shape == (3, 1)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("model", ["dag-lstm", "dag-lstm-attention"])
def test_forward_arrangement_runs_every_block_along_the_dag(model):
    net = GraphModel(model, out_channels=1, node_channels=5, hidden=8, layers=3,
                     model_options={"arrangement": "forward"})
    assert [block.conv.reverse for block in net.blocks] == [False, False, False]
    with pytest.raises(ValueError, match="arrangement"):
        GraphModel(model, out_channels=1, node_channels=5, hidden=8, layers=3,
                   model_options={"arrangement": "sideways"})


def test_node_level_model_on_given_trees():
    """Leaves -> root trees (SST's direction): one output per node, orientation kept."""
    gen = torch.Generator().manual_seed(4)
    trees = [random_tree(n, gen) for n in (5, 9)]
    batch = Batch.from_data_list([Data(x=torch.rand(n, 2), edge_index=e.flip(0)) for e, n in trees])
    net = GraphModel("dag-lstm", out_channels=3, node_channels=2, hidden=8, layers=2,
                     task_level="node", orientation="given")
    assert net(batch).shape == (14, 3)
