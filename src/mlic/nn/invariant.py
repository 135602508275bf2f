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


class DepthwiseConv(nn.Conv2d):
    """A depthwise ``nn.Conv2d`` (stride 1, 'same' padding) that in float64 (format version 3)
    runs as a sum of shifted products: torch has no float64 depthwise kernel on CPU and loops
    over the channels (100x slower). Float32 runs torch's kernel unchanged."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype != torch.float64:
            return super().forward(x)
        kh, kw = self.kernel_size
        ph, pw = self.padding
        h, w = x.shape[-2:]
        xp = torch.nn.functional.pad(x, (pw, pw, ph, ph))
        weight = self.weight[:, 0]
        out = None
        for i in range(kh):
            for j in range(kw):
                term = xp[..., i : i + h, j : j + w] * weight[:, i, j].view(1, -1, 1, 1)
                out = term if out is None else out + term
        return out + self.bias.view(1, -1, 1, 1) if self.bias is not None else out


def _is_depthwise(m: nn.Module) -> bool:
    return (
        type(m) is nn.Conv2d
        and m.groups == m.in_channels == m.out_channels > 1
        and m.stride == (1, 1)
        and m.dilation == (1, 1)
        and isinstance(m.padding, tuple)
        and m.padding == (m.kernel_size[0] // 2, m.kernel_size[1] // 2)
        and m.padding_mode == "zeros"
    )


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
    """Swap every plain 1x1 convolution inside ``module`` for :class:`MatmulConv1x1` and every
    depthwise one for :class:`DepthwiseConv`, in place (same parameters, same state dict)."""
    for m in module.modules():
        if _is_plain_1x1(m):
            m.__class__ = MatmulConv1x1
        elif _is_depthwise(m):
            m.__class__ = DepthwiseConv
    return module
