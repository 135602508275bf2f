"""Conditional Gaussian entropy model for the latent y (architecture.md §5.8, §7.3).

Each element is modelled as ``N(mu, sigma)`` convolved with a unit-width uniform,
so the probability of the integer bin around ``y`` is
``Phi((y - mu + 1/2) / sigma) - Phi((y - mu - 1/2) / sigma)`` with
``sigma = max(sigma, 0.11)`` and the result bounded below by ``1e-9``.

For coding, sigma is snapped up to a table of 64 log-spaced scales between
0.11 and 256 (the first entry >= sigma); each scale has an integer CDF over
``round(y - mu)`` built by :meth:`GaussianConditional.update`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..nn import lower_bound
from .base import TabledEntropyModel
from .quantize import quantize
from ..coding.tables import quantize_pmf

SCALE_BOUND = 0.11
SCALE_MAX = 256.0
NUM_SCALES = 64


def default_scale_table() -> Tensor:
    """``exp(linspace(ln 0.11, ln 256, 64))`` (architecture.md §7.3)."""
    return torch.exp(torch.linspace(math.log(SCALE_BOUND), math.log(SCALE_MAX), NUM_SCALES))


def _std_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * torch.erfc(-x * (2.0**-0.5))


class GaussianConditional(TabledEntropyModel):
    """Gaussian likelihoods and coding tables for y given predicted scales and means.

    Args:
        scale_table: increasing coding scales (default :func:`default_scale_table`).
        scale_bound: lower bound on sigma in likelihoods.
        tail_mass: mass outside each table's range (coded through the escape).
        likelihood_bound: lower bound on returned likelihoods.
    """

    def __init__(
        self,
        scale_table: Tensor | None = None,
        scale_bound: float = SCALE_BOUND,
        tail_mass: float = 1e-9,
        likelihood_bound: float = 1e-9,
    ) -> None:
        super().__init__(likelihood_bound)
        table = default_scale_table() if scale_table is None else torch.as_tensor(scale_table, dtype=torch.float32)
        if table.dim() != 1 or table.numel() == 0 or (table[1:] <= table[:-1]).any():
            raise ValueError("scale_table must be a non-empty increasing 1-D sequence")
        self.register_buffer("scale_table", table.clone())
        self.scale_bound = float(scale_bound)
        self.tail_mass = float(tail_mass)

    def likelihood(self, values: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """Probability of the unit bin around each of ``values``."""
        v = values - means if means is not None else values
        s = lower_bound(scales, self.scale_bound)
        v = torch.abs(v)  # symmetric: evaluate in the left tail, where Phi is accurate
        upper = _std_normal_cdf((0.5 - v) / s)
        lower = _std_normal_cdf((-0.5 - v) / s)
        return lower_bound(upper - lower, self.likelihood_bound)

    def forward(self, y: Tensor, scales: Tensor, means: Tensor | None = None, training: bool | None = None) -> tuple[Tensor, Tensor]:
        """Returns ``(y_rate, likelihoods)``: ``y + noise`` in training, ``round(y - mu) + mu`` otherwise."""
        training = self.training if training is None else training
        y_rate = quantize(y, "noise") if training else quantize(y, "round", means)
        return y_rate, self.likelihood(y_rate, scales, means)

    def build_indexes(self, scales: Tensor) -> Tensor:
        """Table index per element: the first table scale >= ``max(sigma, bound)``, capped at the last.

        A pure comparison against the table (its float32 values, compared in the dtype of
        ``scales``: float32 or float64), so it depends only on the values of ``scales``, never
        on thread count or batch layout.
        """
        dtype = torch.float64 if scales.dtype == torch.float64 else torch.float32
        s = torch.clamp(scales.detach().to(dtype), min=self.scale_bound).contiguous()
        table = self.scale_table.float().to(s.device, dtype)
        return torch.clamp(torch.bucketize(s, table), max=table.numel() - 1)

    @torch.no_grad()
    def update(self, force: bool = False) -> bool:
        """Build one integer CDF per table scale. Returns True if rebuilt."""
        if self.has_tables and not force:
            return False
        from scipy.special import ndtr, ndtri  # only when building tables (loaded weights carry them)

        multiplier = -float(ndtri(self.tail_mass / 2))
        cdfs, offsets = [], []
        for scale in self.scale_table.double().cpu().numpy():
            centre = int(math.ceil(scale * multiplier))
            k = np.abs(np.arange(-centre, centre + 1, dtype=np.float64))
            pmf = ndtr((0.5 - k) / scale) - ndtr((-0.5 - k) / scale)
            tail = 2.0 * ndtr((-centre - 0.5) / scale)
            cdfs.append(quantize_pmf(pmf, tail))
            offsets.append(-centre)
        self._set_tables(cdfs, offsets)
        return True
