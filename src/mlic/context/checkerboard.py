"""Checkerboard convention (architecture.md §4, decision A11).

Anchors are the latent positions (r, c) with r + c odd; non-anchors have r + c
even (so (0, 0) is a non-anchor). This is the opposite of CompressAI's default
parity and is what the official MLIC++ checkpoints expect.

"Squeezing" packs one half into [B, C, h, w/2]: row r keeps its positions of
that half in left-to-right order. Entropy-coding order within a pass is the
squeezed tensor in row-major order. Widths must be even (the 64-pixel padding
guarantees it).
"""

from __future__ import annotations

import torch
from torch import Tensor

ANCHOR = "anchor"
NONANCHOR = "nonanchor"
HALVES = (ANCHOR, NONANCHOR)


def anchor_mask(h: int, w: int, device=None, dtype=torch.float32) -> Tensor:
    """[1, 1, h, w]: 1 at anchors (r + c odd), 0 elsewhere."""
    r = torch.arange(h, device=device).view(h, 1)
    c = torch.arange(w, device=device).view(1, w)
    return ((r + c) % 2 == 1).to(dtype).view(1, 1, h, w)


def half_mask(half: str, h: int, w: int, device=None, dtype=torch.float32) -> Tensor:
    m = anchor_mask(h, w, device, dtype)
    return m if half == ANCHOR else 1 - m


def keep(t: Tensor, half: str) -> Tensor:
    """Copy of ``t`` with the other half set to zero."""
    return t * half_mask(half, t.shape[-2], t.shape[-1], t.device, t.dtype)


def _column_phase(half: str, h: int, device) -> Tensor:
    """[h, 1] column parity (0 or 1) that ``half`` occupies in each row."""
    r = torch.arange(h, device=device).view(h, 1)
    # anchors: odd columns in even rows, even columns in odd rows
    return (r + 1) % 2 if half == ANCHOR else r % 2


def squeeze(t: Tensor, half: str) -> Tensor:
    """[..., h, w] -> [..., h, w/2], keeping ``half``."""
    h, w = t.shape[-2:]
    if w % 2:
        raise ValueError("checkerboard squeeze needs an even latent width")
    pairs = t.reshape(*t.shape[:-1], w // 2, 2)
    phase = _column_phase(half, h, t.device).expand(h, w // 2)
    return torch.where(phase == 1, pairs[..., 1], pairs[..., 0])


def unsqueeze(t: Tensor, half: str) -> Tensor:
    """Inverse of :func:`squeeze`: [..., h, w/2] -> [..., h, w] with zeros at the other half."""
    h, w2 = t.shape[-2:]
    phase = _column_phase(half, h, t.device).expand(h, w2)
    zero = torch.zeros((), dtype=t.dtype, device=t.device)
    left = torch.where(phase == 0, t, zero)
    right = torch.where(phase == 1, t, zero)
    return torch.stack([left, right], dim=-1).reshape(*t.shape[:-1], 2 * w2)
