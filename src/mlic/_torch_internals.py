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
