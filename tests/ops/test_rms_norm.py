"""The explicit RMSNorm against torch's (the reference): outputs and both gradients."""
import pytest
import torch

from plstm_graph.ops.rms_norm import rms_norm, rms_norm_reference
from plstm_graph.testing import assert_same_outputs_and_grads


@pytest.mark.parametrize("shape,weight_shape", [((7, 4, 16), (4, 16)), ((5, 3, 1), (3, 1)),
                                                 ((9, 64), (64,)), ((2, 3, 5, 6), (5, 6))])
def test_outputs_and_gradients_equal_the_reference(shape, weight_shape):
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(shape, dtype=torch.float64, generator=gen) * 3,
              torch.rand(weight_shape, dtype=torch.float64, generator=gen) + 0.5]
    assert_same_outputs_and_grads(lambda x, w: rms_norm(x, w, 1e-5),
                                  lambda x, w: rms_norm_reference(x, w, 1e-5), inputs,
                                  names=["x", "weight"], atol=1e-12)


def test_float32_and_rows_of_zeros():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, 8, generator=gen)
    x[2] = 0.0  # eps keeps a row of zeros finite, as in torch's
    w = torch.rand(2, 8, generator=gen)
    assert_same_outputs_and_grads(lambda x, w: rms_norm(x, w), lambda x, w: rms_norm_reference(x, w, 1e-5),
                                  [x, w], names=["x", "weight"], atol=1e-5, rtol=1e-5)
