import pytest
import torch
from torch_geometric.data import Batch, Data

from plstm_graph.nn import GraphTransformerBlock
from plstm_graph.testing import assert_same_outputs_and_grads, batch_of_sizes, graphwise_sdpa

SIZES = (5, 0, 1, 12)


def reference_block(block: GraphTransformerBlock, x, batch):
    """The block written out by hand, attention by SDPA graph by graph."""
    attention = block.attention
    heads = (x.size(0), attention.heads, attention.channels // attention.heads)
    h = block.norm1(x)
    q, k, v = (lin(h).view(heads)
               for lin in (attention.lin_query, attention.lin_key, attention.lin_value))
    x = x + attention.lin_out(graphwise_sdpa(q, k, v, batch).reshape(x.shape))
    return x + block.mlp(block.norm2(x))


@pytest.mark.parametrize("passes", [1, 2, 3])
def test_equals_block_written_with_sdpa(passes):
    torch.manual_seed(0)
    block = GraphTransformerBlock(8, heads=2, passes=passes, chunk_size=4).double()
    batch = batch_of_sizes(SIZES)
    x = torch.randn(batch.numel(), 8, dtype=torch.float64)
    assert_same_outputs_and_grads(lambda x: block(x, batch), lambda x: reference_block(block, x, batch),
                                  [x], names=["x"], atol=1e-10)
    block(x, batch).square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in block.parameters())


def test_pyg_batch_equals_graph_by_graph_and_permutation_equivariant():
    torch.manual_seed(0)
    block = GraphTransformerBlock(16, heads=4).eval()
    graphs = [Data(x=torch.randn(n, 16)) for n in (3, 70, 1)]
    batch = Batch.from_data_list(graphs)
    out = block(batch.x, batch.batch)
    alone = torch.cat([block(g.x) for g in graphs])
    torch.testing.assert_close(out, alone, atol=1e-5, rtol=1e-5)
    perm = torch.randperm(70)
    torch.testing.assert_close(block(graphs[1].x[perm]), alone[3:73][perm], atol=1e-5, rtol=1e-5)


def test_autocast_bfloat16_trains_close_to_float32():
    torch.manual_seed(0)
    block = GraphTransformerBlock(16, heads=4)
    batch = batch_of_sizes(SIZES)
    x = torch.randn(batch.numel(), 16)
    want = block(x, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = block(x, batch)  # the projections give bfloat16 q, k, v
    out.float().square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in block.parameters())
    torch.testing.assert_close(out.float(), want, atol=5e-2, rtol=5e-2)


def test_reset_parameters_repr_and_dropout():
    block = GraphTransformerBlock(12, heads=3, dropout=0.5)
    torch.manual_seed(1)
    block.reset_parameters()
    first = [p.detach().clone() for p in block.parameters()]
    torch.manual_seed(1)
    block.reset_parameters()
    assert all(torch.equal(a, b) for a, b in zip(first, block.parameters()))
    assert repr(block) == "GraphTransformerBlock(12, heads=3, passes=1, chunk_size=64)"

    x, batch = torch.randn(6, 12), torch.tensor([0, 0, 0, 1, 1, 1])
    block.eval()
    torch.testing.assert_close(block(x, batch), block(x, batch))
    block.train()
    assert not torch.allclose(block(x, batch), block.eval()(x, batch))


@pytest.mark.parametrize("kwargs, match", [
    (dict(channels=10, heads=4), "`heads`"),
    (dict(channels=8, heads=0), "`heads`"),
    (dict(channels=8, dropout=1.0), "`dropout`"),
    (dict(channels=8, passes=0), "`passes`"),
    (dict(channels=8, chunk_size=0), "`chunk_size`"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GraphTransformerBlock(**kwargs)
