"""pLSTM numerics beyond float64: non-finite inputs and half precision, on every backend."""
import pytest
import torch

import plstm_graph as pg
from plstm_graph.ops.plstm import compiled
from plstm_graph.testing import (PLSTM_INPUT_NAMES, RING_SMILES, disjoint_union, molecule,
                                 outputs_and_grads, random_plstm_inputs)

BACKENDS = ["reference", "levels", "parallel", "mixed", "dense", "auto",
            pytest.param("compiled", marks=pytest.mark.skipif(
                not compiled.available(), reason="compiled sweep unavailable"))]


@pytest.fixture(scope="module")
def molecules() -> pg.LineGraph:
    """Three molecules with rings in one batch (auto: the compiled sweep, else parallel)."""
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


# Half precision: computed in float32, so the error is the rounding of the output (and of the
# gradients) to the half dtype; compared with float64 on the same, already rounded, inputs.
TOLERANCE = {torch.float16: 2e-3, torch.bfloat16: 2e-2}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_matches_float64(molecules, backend, dtype):
    inputs = [x.to(dtype) for x in random_plstm_inputs(
        molecules, 2, 3, 4, generator=torch.Generator().manual_seed(1))]
    out, grads = outputs_and_grads(lambda *xs: pg.plstm(*xs, molecules, backend=backend), inputs)
    want, want_grads = outputs_and_grads(
        lambda *xs: pg.plstm(*xs, molecules, backend="reference"), [x.double() for x in inputs],
        cotangent=torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out).double())
    tol = TOLERANCE[dtype]
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    torch.testing.assert_close(out.double(), want, atol=tol, rtol=tol)
    for name, got, expected in zip(PLSTM_INPUT_NAMES, grads, want_grads):
        torch.testing.assert_close(got.double(), expected, atol=tol, rtol=tol,
                                   msg=lambda m, name=name: f"gradient of {name}: {m}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_autocast_takes_mixed_precision(molecules, backend):
    # Under autocast a layer's projections arrive in bfloat16 and other gates may not: the
    # operator promotes them, computes in float32 and returns float32 (like autocast's linalg).
    inputs = random_plstm_inputs(molecules, 2, 3, 4, dtype=torch.float32,
                                 generator=torch.Generator().manual_seed(2))
    proj = torch.nn.Linear(3, 3, bias=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q = proj(inputs[0])
        assert q.dtype == torch.bfloat16
        out = pg.plstm(q, *inputs[1:], molecules, backend=backend)
        out.sum().backward()
    assert out.dtype == torch.float32 and proj.weight.grad is not None
    want = pg.plstm(q.float().detach(), *inputs[1:], molecules, backend="reference")
    torch.testing.assert_close(out.detach(), want, atol=1e-5, rtol=1e-5)


def test_mixed_dtypes_outside_autocast_name_the_argument(molecules):
    inputs = random_plstm_inputs(molecules, 2, 3, 4)
    inputs[3] = inputs[3].float()
    with pytest.raises(ValueError, match=r"source must have the dtype of q \(torch.float64\)"):
        pg.plstm(*inputs, molecules)
