import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

import plstm_graph as pg
from plstm_graph.testing import RING_SMILES, molecule


def molecules():
    out = []
    for i, smiles in enumerate(RING_SMILES + ("C", "CC")):
        edge_index, n = molecule(smiles)
        out.append(Data(x=torch.randn(n, 8), edge_index=edge_index,
                        edge_attr=torch.arange(edge_index.size(1), dtype=torch.float).view(-1, 1) + i * 100,
                        y=torch.tensor([i])))
    return out


@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("reverse", [False, True])
def test_batching_offsets_every_index(mode, reverse):
    transform = pg.PrepareDAG()
    data = [transform(d) for d in molecules()]
    batch = next(iter(DataLoader(data, batch_size=len(data))))
    got = batch.line_graph(mode, reverse)
    want = pg.prepare_dag(batch.edge_index, batch.num_nodes, mode=mode)
    want = want.reverse() if reverse else want
    for name in ("edge_index", "edge_id", "line_index", "edge_level"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    # edge_id indexes the batch's edge features: each DAG edge finds its own graph's features.
    graph_of_edge = batch.batch[got.edge_index[0]]
    assert torch.equal(batch.edge_attr[got.edge_id, 0].div(100).floor().long(), graph_of_edge)


def test_layer_on_a_batch_equals_graphs_one_by_one():
    torch.manual_seed(0)
    transform = pg.PrepareDAG()
    data = [transform(d) for d in molecules()]
    batch = next(iter(DataLoader(data, batch_size=len(data))))
    for mode, reverse in [("P", False), ("D", True)]:
        conv = pg.PLSTMConv(8, 12, heads=3, mode=mode, edge_dim=1).double()
        for p in conv.parameters():  # away from the small-gate initialisation
            torch.nn.init.normal_(p, std=0.5)
        together = conv(batch.x.double(), batch.line_graph(mode, reverse), batch.edge_attr.double())
        alone = torch.cat([conv(d.x.double(), d.line_graph(mode, reverse), d.edge_attr.double())
                           for d in data])
        torch.testing.assert_close(together, alone, atol=1e-10, rtol=0)


def test_line_graph_of_falls_back_to_computing():
    d = molecules()[2]
    g = pg.line_graph_of(d, "D", reverse=True)
    assert torch.equal(g.line_index, pg.PrepareDAG()(d).line_graph("D", True).line_index)


def test_transform_arguments_and_missing_graph():
    with pytest.raises(ValueError, match="modes must be a non-empty subset"):
        pg.PrepareDAG(modes=["Q"])
    with pytest.raises(ValueError, match="orientation must be one of"):
        pg.PrepareDAG(orientation="sideways")
    d = pg.PrepareDAG(modes=["P"], reverse=False)(molecules()[0])
    assert "PrepareDAG(line_graphs=[('P', False)]" in repr(pg.PrepareDAG(modes=["P"], reverse=False))
    with pytest.raises(KeyError, match="no precomputed line graph 'dag_D_rev'"):
        d.line_graph("D", reverse=True)


@pytest.mark.parametrize("orientation", ["index", "given"])
def test_forward_many_equals_one_by_one(orientation):
    gen = torch.Generator().manual_seed(0)
    data = []
    for i, n in enumerate([6, 1, 0, 9, 4, 12, 3]):
        pairs = torch.randint(0, max(n, 1), (2, 2 * n), generator=gen)
        if orientation == "given":
            pairs = torch.stack([pairs.min(0).values, pairs.max(0).values])
            pairs = pairs[:, pairs[0] != pairs[1]]
        data.append(Data(x=torch.randn(n, 2), edge_index=pairs, y=torch.tensor([i])))
    if orientation == "index":  # molecules are stored in both directions
        data += molecules()
    transform = pg.PrepareDAG(orientation=orientation)
    together = transform.forward_many(data, chunk_size=5)
    assert len(together) == len(data)
    for got, d in zip(together, data):
        want = transform(d.clone())
        assert set(got.keys()) == set(want.keys())
        for key in want.keys():
            assert torch.equal(got[key], want[key]), key
