"""Lower bounds whose gradient still lets an optimiser leave the bound.

A plain ``max(x, b)`` has zero gradient below ``b``, so a parameter or a
likelihood stuck under the bound could never recover. ``lower_bound`` passes the
gradient through whenever ``x >= b`` or the gradient would push ``x`` upwards
(Balle et al., "End-to-end optimized image compression", 2017).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _LowerBound(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, bound: Tensor) -> Tensor:
        ctx.save_for_backward(x, bound)
        return torch.maximum(x, bound)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, bound = ctx.saved_tensors
        # A descent step moves x by -grad: let it through if x is above the
        # bound or if the step would raise x.
        passes = (x >= bound) | (grad < 0)
        return grad * passes.to(grad.dtype), None


def lower_bound(x: Tensor, bound: float | Tensor) -> Tensor:
    """``max(x, bound)`` with a gradient that can pull ``x`` back above ``bound``."""
    b = torch.as_tensor(bound, dtype=x.dtype, device=x.device)
    return _LowerBound.apply(x, b)


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, factor: float) -> Tensor:
        ctx.factor = factor
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.factor, None


def scale_gradient(x: Tensor, factor: float) -> Tensor:
    """``x`` in the forward pass; its gradient multiplied by ``factor`` in the backward pass."""
    return _ScaleGradient.apply(x, float(factor))


class NonNegativeParametrizer(nn.Module):
    """Stores a non-negative quantity ``v >= minimum`` as ``p`` with ``v = p**2 - pedestal``.

    The square-root parametrisation keeps gradients well-scaled near zero; the
    pedestal (2**-36) avoids a vanishing gradient at exactly zero. Used by GDN.
    """

    def __init__(self, minimum: float = 0.0, pedestal: float = 2.0**-36) -> None:
        super().__init__()
        self.minimum = float(minimum)
        self.pedestal = float(pedestal)
        self.floor = (self.minimum + self.pedestal) ** 0.5

    def init(self, value: Tensor) -> Tensor:
        return torch.sqrt(torch.clamp(value + self.pedestal, min=self.pedestal))

    def forward(self, p: Tensor) -> Tensor:
        return lower_bound(p, self.floor) ** 2 - self.pedestal
