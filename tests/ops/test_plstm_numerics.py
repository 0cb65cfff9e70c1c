"""pLSTM numerics beyond float64: non-finite inputs and half precision, on every backend."""
import pytest
import torch

import plstm_graph as pg
from plstm_graph.testing import (PLSTM_INPUT_NAMES, RING_SMILES, disjoint_union, molecule,
                                 random_plstm_inputs)

BACKENDS = ["reference", "levels", "parallel", "dense", "auto"]


@pytest.fixture(scope="module")
def molecules() -> pg.LineGraph:
    """Three molecules with rings in one batch (auto takes the parallel form for them)."""
    return pg.prepare_dag(*disjoint_union([molecule(s) for s in RING_SMILES[1:4]]), mode="P")


# Which row of each input to poison: a node, an edge or a line edge in the middle graph.
ROW = {"q": 12, "k": 12, "v": 12, "source": 14, "transition": 14, "mark": 14, "direct": 12}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("name", PLSTM_INPUT_NAMES)
def test_non_finite_input_reaches_what_the_reference_says(molecules, backend, name, value):
    inputs = random_plstm_inputs(molecules, 2, 3, 4, generator=torch.Generator().manual_seed(0))
    inputs[PLSTM_INPUT_NAMES.index(name)][ROW[name], 0] = value
    want = pg.plstm(*inputs, molecules, backend="reference")
    got = pg.plstm(*inputs, molecules, backend=backend)
    assert bool(torch.isfinite(want).any()) and not bool(torch.isfinite(want).all())
    assert torch.equal(got.isnan(), want.isnan())
    assert torch.equal(got.isinf(), want.isinf())
    finite = torch.isfinite(want)
    torch.testing.assert_close(got[finite], want[finite], atol=1e-10, rtol=0)
