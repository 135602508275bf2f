"""The transforms' inference path: no new buffers, weights kept in the input's layout.

In inference (autograd records nothing) g_a and g_s run channels-last (``MLIC._layout``) and
may overwrite their own intermediate results. Both change only how the same arithmetic is
laid out in memory; the values are the same bit for bit (tests/test_models.py):

- ``gelu`` and ``plus`` below (and GDN) write into the temporary they were given instead of
  allocating and first-touching a new full-resolution tensor per operation;
- :class:`ChannelsLastConv2d` keeps a channels-last copy of its weight: with NCHW weights
  torch copies the weight into the input's layout on every call (measured on the emulated
  AVX2 CPU, a 64 -> 64 3x3 convolution at 384x256: 81 ms with the NCHW weight, 73 ms with the
  channels-last one, the same output).

Training, the latent search (autograd records) and autocast (bf16) take the ordinary path.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._torch_internals import gelu_, version_key


# False: every block takes the ordinary path even in inference (``benchmarks/speed.py
# --inference-path fast,plain`` times both in one run).
enabled = True


def in_place_ok(*tensors: Tensor) -> bool:
    """Inference only, outside autocast (which picks each out-of-place result's dtype), one dtype."""
    t = tensors[0]
    return (enabled and not torch.is_grad_enabled() and not torch.is_autocast_enabled(t.device.type)
            and all(u.dtype == t.dtype for u in tensors))  # fmt: skip


def gelu(x: Tensor, act: nn.GELU) -> Tensor:
    """``act(x)``, in place when allowed (``x`` must be a temporary of the caller's)."""
    return gelu_(x) if act.approximate == "none" and in_place_ok(x) else act(x)


def plus(out: Tensor, other: Tensor) -> Tensor:
    """``out + other``, into ``out`` when allowed (``out`` must be a temporary of the caller's)."""
    return out.add_(other) if out.shape == other.shape and in_place_ok(out, other) else out + other


class ChannelsLastConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (same parameters, same state dict) that, in inference on a channels-last
    input of its own dtype, convolves with a cached channels-last copy of its weight. The cache
    is not a parameter or buffer (never saved) and follows every change of the weight."""

    def forward(self, x: Tensor) -> Tensor:
        if not in_place_ok(x, self.weight) or not x.is_contiguous(memory_format=torch.channels_last):
            return super().forward(x)
        key = version_key(self.weight)
        cached = self.__dict__.get("_channels_last_weight")
        if cached is None or cached[0] != key:
            cached = (key, self.weight.detach().contiguous(memory_format=torch.channels_last))
            self.__dict__["_channels_last_weight"] = cached
        return self._conv_forward(x, cached[1], self.bias)


def make_channels_last_ready(module: nn.Module) -> nn.Module:
    """Swap every plain ``nn.Conv2d`` inside ``module`` for :class:`ChannelsLastConv2d`, in place."""
    for m in module.modules():
        if type(m) is nn.Conv2d:
            m.__class__ = ChannelsLastConv2d
    return module
