import pytest
import torch
from torch_geometric.nn import GINEConv

import plstm_graph as pg
from plstm_graph.nn import GraphAttention, GraphTransformerBlock
from plstm_graph.nn.local_global import LocalGlobalMixer
from plstm_graph.nn.mixers import gine
from plstm_graph.testing import RING_SMILES, molecule

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def undirected_molecule():
    edge_index, n = molecule(RING_SMILES[2])
    return torch.randn(n, 16), torch.cat([edge_index, edge_index.flip(0)], 1)


def test_mixer_is_the_sum_of_its_two_layers():
    torch.manual_seed(0)
    x, edge_index = undirected_molecule()
    edge_attr = torch.randn(edge_index.size(1), 16)
    plstm, local = pg.PLSTMConv(16, 16, edge_dim=16), gine(16)
    mixer = LocalGlobalMixer(plstm, local)
    graph = plstm.line_graph(x, edge_index)
    expected = plstm(x, graph, edge_attr) + local(x, edge_index, edge_attr)
    out = mixer(x, graph, edge_attr, local_edge_index=edge_index, local_edge_attr=edge_attr)
    torch.testing.assert_close(out, expected)
    assert repr(mixer).startswith("LocalGlobalMixer(PLSTMConv(16, 16") and "local=GINEConv" in repr(mixer)
    # Any global layer: its own arguments pass through (GraphGPS: attention beside GINE).
    attention = GraphAttention(16, heads=2)
    mixer = LocalGlobalMixer(attention, local)
    out = mixer(x, None, local_edge_index=edge_index, local_edge_attr=edge_attr, tiles=None)
    torch.testing.assert_close(out, attention(x, None, tiles=None) + local(x, edge_index, edge_attr))


def test_block_reads_the_input_edges_for_its_local_layer():
    torch.manual_seed(0)
    x, edge_index = undirected_molecule()
    edge_attr = torch.randn(edge_index.size(1), 16)
    block = pg.PLSTMBlock(16, heads=2, edge_dim=16, local=gine(16))
    assert isinstance(block.conv, pg.PLSTMConv) and isinstance(block.local, GINEConv)
    graph = block.conv.line_graph(x, edge_index)
    # With a tensor edge_index the local layer reads it; with a LineGraph it must be given.
    out = block(x, edge_index, edge_attr)
    torch.testing.assert_close(block(x, graph, edge_attr, local_edge_index=edge_index), out)
    with pytest.raises(ValueError, match="local_edge_index is required"):
        block(x, graph, edge_attr)
    # The local layer reads the edges it is given (here each bond one way, twice), not the DAG.
    one_way = edge_index[:, : edge_index.size(1) // 2]
    changed = block(x, graph, edge_attr, local_edge_index=one_way.repeat(1, 2))
    assert not torch.allclose(changed, out)
    plain = pg.PLSTMBlock(16, heads=2, edge_dim=16)
    assert plain.local is None and plain.conv is plain.mixer


def test_transformer_block_with_a_local_layer_is_graphgps_block():
    torch.manual_seed(0)
    x, edge_index = undirected_molecule()
    edge_attr = torch.randn(edge_index.size(1), 16)
    block = GraphTransformerBlock(16, heads=2, local=gine(16))
    assert isinstance(block.attention, GraphAttention) and isinstance(block.local, GINEConv)
    h = block.norm1(x)
    mixed = x + block.attention(h) + block.local(h, edge_index, edge_attr)
    expected = mixed + block.mlp(block.norm2(mixed))
    torch.testing.assert_close(block(x, edge_index=edge_index, edge_attr=edge_attr), expected)
    with pytest.raises(ValueError, match="edge_index is required"):
        block(x)
    plain = GraphTransformerBlock(16, heads=2)
    assert plain.local is None and plain.attention is plain.mixer
    assert "local=GINEConv" in repr(block) and repr(block).startswith("GraphTransformerBlock(")
