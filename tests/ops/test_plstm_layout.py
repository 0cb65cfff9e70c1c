"""The block layout of the parallel backend: where every node, edge and line edge of a batch
sits in the buffers the kernel fills (the kernel itself is compared with the reference in
test_plstm.py)."""
import pytest
import torch

import plstm_graph as pg
from plstm_graph.ops.plstm.blocks import blocks_of, layout_of
from plstm_graph.testing import (RING_SMILES, assert_plstm_matches_reference, chain,
                                 disjoint_union, molecule, random_tree)


def batch(mode="P"):
    gen = torch.Generator().manual_seed(4)
    graphs = [*(molecule(s) for s in RING_SMILES), *(random_tree(n, gen) for n in (3, 9, 14)),
              chain(40), (torch.zeros(2, 0, dtype=torch.long), 2)]
    return pg.prepare_dag(*disjoint_union(graphs), mode=mode)


def slot_coordinates(layout):
    """For every slot of the ``[E, N]`` and ``[E, E]`` buffers: the edge slot of its row and the
    node (resp. edge) slot of its column."""
    edge_slots = torch.arange(sum(layout.sizes["E"]))
    node_slots = torch.arange(sum(layout.sizes["N"]))
    rows_en, cols_en, rows_ee, cols_ee = [], [], [], []
    for e, n in zip(layout.split(edge_slots, "E"), layout.split(node_slots, "N")):
        size_e, size_n = e.size(1), n.size(1)
        rows_en.append(e[:, :, None].expand(-1, -1, size_n).flatten())
        cols_en.append(n[:, None, :].expand(-1, size_e, -1).flatten())
        rows_ee.append(e[:, :, None].expand(-1, -1, size_e).flatten())
        cols_ee.append(e[:, None, :].expand(-1, size_e, -1).flatten())
    return (torch.cat(rows_en), torch.cat(cols_en)), (torch.cat(rows_ee), torch.cat(cols_ee))


@pytest.mark.parametrize("heads", [1, 3])
@pytest.mark.parametrize("mode", ["P", "D"])
def test_every_slot_holds_what_its_row_and_column_say(heads, mode):
    g = batch(mode)
    layout = layout_of(g, heads)
    src, dst = g.edge_index
    e_in, e_out = g.line_index
    head = torch.arange(heads)
    assert len(blocks_of(g)) >= 2
    assert sum(layout.sizes["E"]) == heads * sum(b.count * b.num_edges for b in blocks_of(g))
    # Gather maps read (row, head) = row * H + head; the *_of maps point back at those slots.
    assert torch.equal(layout.dst[layout.edge_of], dst[:, None] * heads + head)
    sources = torch.unique(src)
    assert torch.equal(layout.node[layout.node_of[sources]], sources[:, None] * heads + head)
    sinks = torch.ones(g.num_nodes, dtype=torch.bool)
    sinks[sources] = False
    assert (layout.node_of[sinks] == layout.node.numel()).all()  # the zero past the end
    (rows_en, cols_en), (rows_ee, cols_ee) = slot_coordinates(layout)
    # diag(S) A_out: edge e at (e, src e).
    assert torch.equal(rows_en[layout.source_of], layout.edge_of)
    assert torch.equal(cols_en[layout.source_of], layout.node_of[src])
    # T at (e_out, e_in), strictly lower triangular (edges in level order); its transpose.
    assert torch.equal(rows_ee[layout.transition_of], layout.edge_of[e_out])
    assert torch.equal(cols_ee[layout.transition_of], layout.edge_of[e_in])
    assert torch.equal(rows_ee[layout.transition_t_of], layout.edge_of[e_in])
    assert torch.equal(cols_ee[layout.transition_t_of], layout.edge_of[e_out])
    assert (layout.edge_of[e_out] > layout.edge_of[e_in]).all()
    # No two inputs share a slot.
    for slots in (layout.edge_of, layout.source_of, layout.transition_of, layout.node_of[sources]):
        assert slots.unique().numel() == slots.numel()


def test_one_layout_per_head_count_on_a_shared_graph():
    g = batch()
    for heads in (1, 3, 2):
        assert_plstm_matches_reference(g, "parallel", heads=heads, key_dim=2, value_dim=3)
    assert_plstm_matches_reference(g, "parallel", heads=3, key_dim=2, value_dim=3,
                                   recompute=True, seed=1)
    assert layout_of(g, 3) is layout_of(g, 3)
    assert layout_of(g, 3).heads == 3 and layout_of(g, 1).heads == 1
