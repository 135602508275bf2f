"""Evaluation: metrics on 8-bit images and Bjontegaard deltas."""

from .bd import bd_psnr, bd_rate, rate_saving_at
from .metrics import ms_ssim_rgb, psnr_rgb

__all__ = ["bd_psnr", "bd_rate", "ms_ssim_rgb", "psnr_rgb", "rate_saving_at"]
