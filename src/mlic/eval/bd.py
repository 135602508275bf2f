"""Bjontegaard deltas (VCEG-M33): average rate or quality difference between two RD curves.

Each curve is interpolated in (quality, log10 rate) -- or (log10 rate, quality) for the
quality delta -- and the two interpolants are integrated exactly over the range both
curves cover. Interpolation ``method``:

- ``"pchip"`` (default): piecewise-cubic Hermite, monotone; JVET common-test-conditions
  practice since JVET-K0491 (the CTC spreadsheets);
- ``"akima"``: Akima's piecewise cubic (less overshoot than a spline, not monotone);
- ``"cubic"``: Bjontegaard's original least-squares cubic polynomial over all points.

Results are in percent (rate) or in the quality's unit (dB for PSNR). A warning is
issued for curves with fewer than 4 points; curves that do not overlap raise
``ValueError``.
"""

from __future__ import annotations

import warnings

import numpy as np

METHODS = ("pchip", "akima", "cubic")


def _prepare(rate, quality) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if r.shape != q.shape or r.ndim != 1 or r.size < 2:
        raise ValueError("a curve needs at least two (rate, quality) points")
    if (r <= 0).any() or not np.isfinite(r).all() or not np.isfinite(q).all():
        raise ValueError("rates must be positive and all values finite")
    if r.size < 4:
        warnings.warn("Bjontegaard deltas with fewer than 4 points per curve are unreliable", stacklevel=3)
    order = np.argsort(q)
    return np.log10(r[order]), q[order]


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    if not hi > lo:
        raise ValueError("the curves do not overlap")
    return lo, hi


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    """Exact integral over [lo, hi] of the interpolant of y(x); x ascending."""
    from scipy.interpolate import Akima1DInterpolator, PchipInterpolator  # scipy only when computing

    if method == "pchip":
        return float(PchipInterpolator(x, y).integrate(lo, hi))
    if method == "akima":
        if x.size < 3:
            return float(np.trapezoid(np.interp([lo, hi], x, y), [lo, hi]))  # a line through 2 points
        return float(Akima1DInterpolator(x, y).integrate(lo, hi))
    if method == "cubic":
        poly = np.polynomial.Polynomial.fit(x, y, min(3, x.size - 1)).integ()
        return float(poly(hi) - poly(lo))
    raise ValueError(f"unknown interpolation method {method!r}; choose from {', '.join(METHODS)}")


def _unique_sorted(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    keep = np.concatenate([[True], np.diff(x) > 0])
    if not keep.all():
        warnings.warn("repeated quality values on a curve; keeping the first of each", stacklevel=4)
    return x[keep], y[keep]


def bd_rate(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "pchip") -> float:
    """Average rate difference (%) of the test curve at equal quality; negative = test saves bits."""
    ra, qa = _prepare(anchor_rate, anchor_quality)
    rt, qt = _prepare(test_rate, test_quality)
    qa, ra = _unique_sorted(qa, ra)
    qt, rt = _unique_sorted(qt, rt)
    lo, hi = _overlap(qa, qt)
    ia = _integral(qa, ra, lo, hi, method)
    it = _integral(qt, rt, lo, hi, method)
    return float((10 ** ((it - ia) / (hi - lo)) - 1) * 100)


def bd_psnr(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "pchip") -> float:
    """Average quality difference (dB for PSNR) of the test curve at equal rate."""
    ra, qa = _prepare(anchor_rate, anchor_quality)
    rt, qt = _prepare(test_rate, test_quality)
    ra, qa = _unique_sorted(ra, qa)
    rt, qt = _unique_sorted(rt, qt)
    lo, hi = _overlap(ra, rt)
    ia = _integral(ra, qa, lo, hi, method)
    it = _integral(rt, qt, lo, hi, method)
    return float((it - ia) / (hi - lo))


def rate_saving_at(anchor_rate, anchor_quality, rate: float, quality: float) -> float:
    """Rate difference (%) of one (rate, quality) point against the anchor curve at the same quality.

    For a codec with a single rate point, where no Bjontegaard delta exists.
    """
    from scipy.interpolate import PchipInterpolator

    ra, qa = _prepare(anchor_rate, anchor_quality)
    if not qa.min() <= quality <= qa.max():
        raise ValueError("the point's quality is outside the anchor curve")
    return float((rate / 10 ** PchipInterpolator(qa, ra)(quality) - 1) * 100)
