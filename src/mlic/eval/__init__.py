"""Evaluation: metrics on 8-bit images and Bjontegaard deltas (exports imported on first use)."""

from .._lazy import lazy_exports

_WHERE = {"bd_psnr": "bd", "bd_rate": "bd", "rate_saving_at": "bd", "ms_ssim_rgb": "metrics", "psnr_rgb": "metrics"}
__all__ = list(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
