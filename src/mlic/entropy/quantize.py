"""Quantisation of latents during training and coding.

Three modes, following the MLIC++ recipe (architecture.md §6.2, §7.2, decision A8):

- ``"noise"``: ``x + U(-0.5, 0.5)``, a differentiable proxy used for the rate term;
- ``"ste"``: ``round(x - mean) + mean`` in the forward pass with an identity gradient
  (straight-through), used for everything the decoder sees during training;
- ``"round"``: ``round(x - mean) + mean``, what the decoder really reconstructs.
"""

from __future__ import annotations

import torch
from torch import Tensor

MODES = ("noise", "ste", "round")


def ste_round(x: Tensor) -> Tensor:
    """``round(x)`` forward, identity backward."""
    return x + (torch.round(x) - x).detach()


def add_uniform_noise(x: Tensor) -> Tensor:
    """``x + u`` with ``u ~ U(-0.5, 0.5)`` drawn independently per element."""
    return x + torch.empty_like(x).uniform_(-0.5, 0.5)


def quantize(x: Tensor, mode: str, means: Tensor | None = None) -> Tensor:
    """Quantise ``x`` around ``means`` (zero if ``None``) in one of :data:`MODES`.

    ``"noise"`` ignores ``means``: adding noise around any offset has the same law.
    """
    if mode == "noise":
        return add_uniform_noise(x)
    if mode not in MODES:
        raise ValueError(f"unknown quantisation mode {mode!r}; expected one of {MODES}")
    if means is None:
        return ste_round(x) if mode == "ste" else torch.round(x)
    centred = x - means
    q = ste_round(centred) if mode == "ste" else torch.round(centred)
    return q + means
