"""Bjontegaard deltas (VCEG-M33) with piecewise-cubic Hermite (PCHIP) interpolation, as in JVET practice.

Curves are interpolated in (quality, log10 rate) and integrated exactly over the
quality range both curves cover. Results are in percent (rate) or dB.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.interpolate import PchipInterpolator


def _prepare(rate, quality) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if r.shape != q.shape or r.ndim != 1 or r.size < 2:
        raise ValueError("a curve needs at least two (rate, quality) points")
    if (r <= 0).any():
        raise ValueError("rates must be positive")
    if r.size < 4:
        warnings.warn("Bjontegaard deltas with fewer than 4 points per curve are unreliable", stacklevel=3)
    order = np.argsort(q)
    return np.log10(r[order]), q[order]


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    if not hi > lo:
        raise ValueError("the curves do not overlap")
    return lo, hi


def bd_rate(anchor_rate, anchor_quality, test_rate, test_quality) -> float:
    """Average rate difference (%) of the test curve at equal quality; negative = test saves bits."""
    ra, qa = _prepare(anchor_rate, anchor_quality)
    rt, qt = _prepare(test_rate, test_quality)
    lo, hi = _overlap(qa, qt)
    ia = PchipInterpolator(qa, ra).integrate(lo, hi)
    it = PchipInterpolator(qt, rt).integrate(lo, hi)
    return float((10 ** ((it - ia) / (hi - lo)) - 1) * 100)


def bd_psnr(anchor_rate, anchor_quality, test_rate, test_quality) -> float:
    """Average quality difference (dB for PSNR) of the test curve at equal rate."""
    ra, qa = _prepare(anchor_rate, anchor_quality)
    rt, qt = _prepare(test_rate, test_quality)
    oa, ot = np.argsort(ra), np.argsort(rt)
    lo, hi = _overlap(ra, rt)
    ia = PchipInterpolator(ra[oa], qa[oa]).integrate(lo, hi)
    it = PchipInterpolator(rt[ot], qt[ot]).integrate(lo, hi)
    return float((it - ia) / (hi - lo))


def rate_saving_at(anchor_rate, anchor_quality, rate: float, quality: float) -> float:
    """Rate difference (%) of one (rate, quality) point against the anchor curve at the same quality.

    For a codec with a single rate point, where no Bjontegaard delta exists.
    """
    ra, qa = _prepare(anchor_rate, anchor_quality)
    if not qa.min() <= quality <= qa.max():
        raise ValueError("the point's quality is outside the anchor curve")
    return float((rate / 10 ** PchipInterpolator(qa, ra)(quality) - 1) * 100)
