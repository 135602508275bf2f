"""Bjontegaard deltas and metrics."""

import json

import numpy as np
import pytest

from conftest import data_file
from mlic.eval import bd_psnr, bd_rate, ms_ssim_rgb, psnr_rgb, rate_saving_at


def test_bd_rate_of_a_scaled_curve_is_the_scale():
    r = np.array([0.1, 0.2, 0.4, 0.8])
    q = np.array([28.0, 31.0, 34.0, 37.0])
    assert bd_rate(r, q, r, q) == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(r, q, 0.9 * r, q) == pytest.approx(-10.0, abs=1e-6)
    assert bd_psnr(r, q, r, q + 0.5) == pytest.approx(0.5, abs=1e-9)
    assert rate_saving_at(r, q, 0.9 * 0.2, 31.0) == pytest.approx(-10.0, abs=1e-6)
    with pytest.raises(ValueError):
        bd_rate(r, q, r, q + 100)
    with pytest.warns(UserWarning):
        bd_rate(r[:3], q[:3], r[:3], q[:3])


def test_published_anchors_are_ordered_as_known():
    def curve(name):
        res = json.loads(data_file("anchors", "kodak", name).read_text())["results"]
        return np.array(res["bpp"]), np.array(res["psnr-rgb"])

    jpeg, webp, vtm = curve("jpeg.json"), curve("webp.json"), curve("vtm.json")
    assert bd_rate(*jpeg, *webp) < -20  # WebP beats JPEG
    assert bd_rate(*webp, *vtm) < -30  # VTM beats WebP


def test_metrics():
    a = np.random.default_rng(0).integers(0, 256, (200, 200, 3)).astype(np.uint8)
    assert psnr_rgb(a, a) == float("inf")
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert psnr_rgb(a, b) == pytest.approx(10 * np.log10(255**2 * a.size), rel=1e-9)
    assert ms_ssim_rgb(a, a) == pytest.approx(1.0, abs=1e-6)
