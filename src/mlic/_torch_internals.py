"""Every use of a torch API that is private or undocumented, in one place.

Each is kept because a measurement or a guarantee needs it (the reason is next to it), and
``tests/test_torch_internals.py`` fails loudly, naming the function, when a torch upgrade
breaks one, instead of letting it fail deep inside a run (or silently change results).
"""

from __future__ import annotations

import torch


def version_key(t: torch.Tensor) -> tuple:
    """Changes whenever ``t``'s storage or contents may have changed: (storage address, in-place
    version counter, shape). Keys caches of values derived from tensors (coding tables, weight
    digests) that would otherwise be recomputed on every call (hashing 6 M weights: about 30 ms
    per image). ``Tensor._version`` is the autograd counter every in-place op increments."""
    return (t.data_ptr(), t._version, tuple(t.shape))


# How torch runs on an x86-64 CPU with AVX2 but no AVX-512 (and so no bf16 kernels), emulated on
# any newer one: each of torch's three kernel libraries picks its instruction set on its own.
# ATen's elementwise and reduction kernels follow ATEN_CPU_CAPABILITY, oneDNN's convolutions
# ONEDNN_MAX_CPU_ISA, and MKL (matrix products, float64 convolutions, attention)
# MKL_ENABLE_INSTRUCTIONS. Without the last one MKL keeps its AVX-512 / AMX kernels: measured
# here, a 2048x2048 fp32 product ran at 169 GFLOP/s on one thread instead of 81 with AVX2
# kernels (float64: 68 instead of 37), so speed and cross-CPU results were AVX-512 ones.
# ``tests/test_torch_internals.py`` checks in a fresh process that all three take effect.
AVX2_ONLY_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def gelu_(x: torch.Tensor) -> torch.Tensor:
    """Exact (erf) GELU in place: ATen's ``gelu_``, which ``torch.nn.functional`` does not expose.
    The transforms' inference path uses it to skip a full-resolution allocation per GELU
    (mlic.nn.inference); it gives the bits of ``F.gelu`` (tested)."""
    return torch._C._nn.gelu_(x)


def cpu_has_native_bf16() -> bool:
    """oneDNN's own probe for AVX512-BF16 / AMX kernels (torch has no public one for CPUs); where
    bf16 is emulated it is several times slower than fp32 (docs/determinism.md). If the probe
    disappears, answer False: fp32 is always correct, only slower."""
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(probe()) if probe is not None else False


def ddp_ignore(module: torch.nn.Module, names: list[str]) -> None:
    """Make DistributedDataParallel skip these parameters (the bottleneck's quantiles, which the
    auxiliary loss trains identically on every rank and the RD loss does not touch): without it
    DDP waits for gradients that never come."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    DDP._set_params_and_buffers_to_ignore_for_model(module, names)
