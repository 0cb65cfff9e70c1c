r"""RMSNorm over the last dimension with a weight per feature, and its explicit backward.

.. math::
    r = \big(\tfrac{1}{V} \textstyle\sum_j x_j^2 + \epsilon\big)^{-1/2}, \qquad
    y = w \odot (r\, x)

    \partial x = r \big(g_w - \hat x\, \overline{g_w \hat x}\big), \qquad
    \partial w = \textstyle\sum_{\text{rows}} g \odot \hat x, \qquad
    \hat x = r\, x,\ g_w = g \odot w

(:math:`\overline{\,\cdot\,}`: the mean over the last dimension). ``torch.nn.functional.rms_norm``
computes the same; on CPU its backward is a composite of many small operators (1.7 ms for a
``[2200, 4, 16]`` input and a ``[4, 16]`` weight against 1.0 ms here), and pLSTM normalises
every head of every layer's output with it. :func:`rms_norm_reference` is the readable
reference that the tests compare with. Half-precision inputs are normalised in float32, as
torch does (a float16 square overflows from 256 on).
"""
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

_HALF = (torch.float16, torch.bfloat16)


def rms_norm_reference(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """``F.rms_norm`` over the last dimension, times ``weight`` (broadcast over the rows)."""
    return F.rms_norm(x, (x.size(-1),), eps=eps) * weight


class RMSNorm(torch.autograd.Function):
    """:func:`rms_norm` with the backward above (first derivatives only)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, eps: float) -> Tensor:
        ctx.x_dtype, out_dtype = x.dtype, torch.promote_types(x.dtype, weight.dtype)
        x = x.float() if x.dtype in _HALF else x
        r = x.square().mean(-1, keepdim=True).add_(eps).rsqrt_()
        normed = x * r
        ctx.save_for_backward(normed, r, weight)
        return (normed * weight).to(out_dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        normed, r, weight = ctx.saved_tensors
        grad = grad.to(normed.dtype)
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_w = grad * weight
            along = (grad_w * normed).mean(-1, keepdim=True)
            grad_x = (grad_w - normed * along).mul_(r).to(ctx.x_dtype)
        if ctx.needs_input_grad[1]:
            # The weight broadcasts over the leading dimensions: its gradient sums over them.
            grad_weight = (grad * normed).sum_to_size(weight.shape).to(weight.dtype)
        return grad_x, grad_weight, None


def rms_norm(x: Tensor, weight: Tensor, eps: float = 1e-5) -> Tensor:
    """RMSNorm of ``x`` over its last dimension, times ``weight``, whose shape is that of the
    trailing dimensions of ``x`` (e.g. ``[H, V]`` for ``x`` of ``[N, H, V]``)."""
    if weight.dim() == 0 or weight.dim() > x.dim() or weight.shape != x.shape[x.dim() - weight.dim():]:
        raise ValueError(f"weight must have the shape of the last dimensions of x "
                         f"({list(x.shape)}), got {list(weight.shape)}")
    return RMSNorm.apply(x, weight, eps)


__all__ = ["rms_norm", "rms_norm_reference"]
