"""Thread-count-invariant layers for the probability path.

On CPU, PyTorch's 1x1 convolutions (oneDNN) split their reduction differently
with 1 and 2 threads for some shapes (for example 320 -> 256 channels), so the
last bits of a predicted scale or mean depend on the thread count, and a
decoder with another thread count desynchronises. Measured here: 3x3, 5x5 and
depthwise convolutions, matrix products, softmax, LayerNorm and GELU give
identical bits with 1 and 2 threads; 1x1 convolutions do not. So the probability
path computes its 1x1 convolutions as matrix products.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MatmulConv1x1(nn.Conv2d):
    """A 1x1, stride-1 ``nn.Conv2d`` computed as ``W @ x`` (same parameters, same state dict)."""

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        out = torch.matmul(self.weight.view(self.out_channels, c), x.reshape(b, c, h * w))
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1)
        return out.view(b, self.out_channels, h, w)


def _is_plain_1x1(m: nn.Module) -> bool:
    return (
        type(m) is nn.Conv2d
        and m.kernel_size == (1, 1)
        and m.stride == (1, 1)
        and m.dilation == (1, 1)
        and m.groups == 1
        and m.padding in ((0, 0), "valid")
    )


def make_thread_invariant(module: nn.Module) -> nn.Module:
    """Swap every plain 1x1 convolution inside ``module`` for :class:`MatmulConv1x1`, in place."""
    for m in module.modules():
        if _is_plain_1x1(m):
            m.__class__ = MatmulConv1x1
    return module
