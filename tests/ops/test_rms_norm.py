"""The explicit RMSNorm against torch's (the reference): outputs and both gradients."""
import pytest
import torch

from plstm_graph.ops.rms_norm import rms_norm, rms_norm_reference
from plstm_graph.testing import assert_same_outputs_and_grads


def reference(x, w):
    return rms_norm_reference(x, w, 1e-5)


@pytest.mark.parametrize("shape,weight_shape", [((7, 4, 16), (4, 16)), ((5, 3, 1), (3, 1)),
                                                 ((9, 64), (64,)), ((2, 3, 5, 6), (5, 6))])
def test_outputs_and_gradients_equal_the_reference(shape, weight_shape):
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(shape, dtype=torch.float64, generator=gen) * 3,
              torch.rand(weight_shape, dtype=torch.float64, generator=gen) + 0.5]
    assert_same_outputs_and_grads(rms_norm, reference, inputs, names=["x", "weight"], atol=1e-12)


def test_float32_and_rows_of_zeros():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, 8, generator=gen)
    x[2] = 0.0  # eps keeps a row of zeros finite, as in torch's
    w = torch.rand(2, 8, generator=gen)
    assert_same_outputs_and_grads(rms_norm, reference, [x, w], names=["x", "weight"],
                                  atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("weight_dtype", [torch.float32, "same"])
def test_half_inputs_are_normalised_in_float32(dtype, weight_dtype):
    gen = torch.Generator().manual_seed(2)
    # Values of 300 and more: their float16 squares overflow.
    x = (torch.randn(5, 2, 8, generator=gen) * 400).to(dtype)
    w = (torch.rand(2, 8, generator=gen) + 0.5).to(dtype if weight_dtype == "same" else weight_dtype)
    got, want = rms_norm(x, w), reference(x, w)
    assert got.dtype == want.dtype
    assert got.float().abs().min() > 0 or bool((x == 0).any())
    assert_same_outputs_and_grads(rms_norm, reference, [x, w], names=["x", "weight"],
                                  atol=1e-2, rtol=1e-2)


def test_the_weight_must_match_the_last_dimensions():
    x = torch.randn(3, 4, 16)
    for weight in (torch.ones(2, 16), torch.ones(4, 1), torch.tensor(1.0), torch.ones(1, 3, 4, 16)):
        with pytest.raises(ValueError, match=r"weight must have the shape of the last dimensions"):
            rms_norm(x, weight)  # each would broadcast or fail inside
    assert rms_norm(x, torch.ones(16)).shape == rms_norm(x, torch.ones(4, 16)).shape == x.shape
