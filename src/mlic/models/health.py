"""The entropy model's health, from one forward pass: where the bits go and whether z is alive.

A collapsed hyperprior or miscalibrated scales cost bits without showing in the loss curve:

- **active z channels**: channels of the hyper-latent in which at least ``ACTIVE_SHARE`` of the
  symbols ``round(z - median)`` differ from the channel's most common one. A channel that
  always codes the same symbol tells the decoder nothing; when (almost) all are like that,
  slice 0's anchors, predicted from the hyperprior alone, get one fixed scale per channel
  whatever the image (the collapse of issue 18).
- **outlier share**: the share of the y bits spent on elements the model gave a likelihood below
  ``OUTLIER`` (most of them at the 1e-9 floor, 30 bits each), per slice and checkerboard half.
  A calibrated model spends under 2 % there.
- **z share**: the z bits as a share of all bits.

:func:`rate_health` reads these from the output of :meth:`MLIC.forward` (eval or train mode);
training logs them (``mlic train``) and ``benchmarks/health.py`` prints them per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..context.checkerboard import HALVES, half_mask

OUTLIER = 1e-6  # likelihood below which an element counts as an outlier
ACTIVE_SHARE = 0.01  # share of varying z symbols from which a z channel counts as active
# Below these a model is flagged (docs/models.md, "Entropy-model health", gives the ranges measured).
MIN_ACTIVE_Z = 0.25  # share of the z channels that must be active
MAX_OUTLIER_SHARE = 0.02  # share of the y bits allowed on outliers

__all__ = ["ACTIVE_SHARE", "OUTLIER", "RateHealth", "rate_health", "varying_share"]


@dataclass
class RateHealth:
    """Bits and symbol statistics of one forward pass (summed over the batch)."""

    y_bits: float
    z_bits: float
    outlier_bits: list[dict[str, float]]  # per slice: {"anchor": bits, "nonanchor": bits}
    slice_bits: list[dict[str, float]]  # per slice: {"anchor": bits, "nonanchor": bits}
    z_varying: list[float]  # per z channel: share of symbols that differ from its most common one

    @property
    def z_channels(self) -> int:
        return len(self.z_varying)

    @property
    def active_z(self) -> int:
        return sum(s >= ACTIVE_SHARE for s in self.z_varying)

    @property
    def z_share(self) -> float:
        return self.z_bits / max(self.y_bits + self.z_bits, 1e-12)

    @property
    def outlier_share(self) -> float:
        return sum(sum(d.values()) for d in self.outlier_bits) / max(self.y_bits, 1e-12)

    def outlier_share_of(self, i: int | None = None, half: str | None = None) -> float:
        """Outlier bits of slice ``i`` (all slices if None) and ``half`` (both if None), as a
        share of all y bits."""
        slices = range(len(self.outlier_bits)) if i is None else [i]
        halves = HALVES if half is None else (half,)
        return sum(self.outlier_bits[s][h] for s in slices for h in halves) / max(self.y_bits, 1e-12)

    def problems(self) -> list[str]:
        """One line per reading outside the healthy range (empty when healthy)."""
        out = []
        if self.active_z < MIN_ACTIVE_Z * self.z_channels:
            out.append(f"hyperprior collapsed: {self.active_z} of {self.z_channels} z channels active "
                       f"(z is {self.z_share:.1%} of the bits)")  # fmt: skip
        if self.outlier_share > MAX_OUTLIER_SHARE:
            worst = max(range(len(self.outlier_bits)), key=lambda s: sum(self.outlier_bits[s].values()))
            out.append(f"{self.outlier_share:.1%} of the y bits on symbols with likelihood < {OUTLIER:g} "
                       f"(most in slice {worst})")  # fmt: skip
        return out

    def summary(self) -> str:
        per_slice = " ".join(f"{self.outlier_share_of(i):.1%}" for i in range(len(self.outlier_bits)))
        return (f"z active {self.active_z}/{self.z_channels}, z share {self.z_share:.2%}, "
                f"outliers {self.outlier_share:.2%} of y bits (per slice {per_slice})")  # fmt: skip


def varying_share(z: Tensor) -> Tensor:
    """Per channel of ``z`` ([B, C, ...]): the share of its values that differ from the channel's
    most common value (a channel stuck at any one symbol carries nothing)."""
    flat = z.transpose(0, 1).reshape(z.shape[1], -1)
    mode = torch.mode(flat, dim=1).values
    return (flat != mode[:, None]).double().mean(dim=1)


def _bits(likelihoods: Tensor) -> Tensor:
    return -torch.log2(likelihoods.detach().double())


@torch.no_grad()
def rate_health(model, out: dict) -> RateHealth:
    """Health of the forward pass ``out`` (``model(x)`` or ``model.forward_latent(...)``)."""
    y_lik, z_lik = out["likelihoods"]["y"], out["likelihoods"]["z"]
    y_bits, z_bits = _bits(y_lik), _bits(z_lik)
    h, w = y_lik.shape[-2:]
    masks = {half: half_mask(half, h, w, y_lik.device, torch.float64) for half in HALVES}
    outlier = y_bits * (y_lik.detach() < OUTLIER)
    c = model.slice_channels
    per_slice, per_slice_out = [], []
    for i in range(model.slices):
        sl = slice(i * c, (i + 1) * c)
        per_slice.append({half: float((y_bits[:, sl] * m).sum()) for half, m in masks.items()})
        per_slice_out.append({half: float((outlier[:, sl] * m).sum()) for half, m in masks.items()})
    varying = varying_share(out["z_hat"].detach())
    return RateHealth(float(y_bits.sum()), float(z_bits.sum()), per_slice_out, per_slice,
                      [float(v) for v in varying])  # fmt: skip

