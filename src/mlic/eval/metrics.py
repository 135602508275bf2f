"""Image quality on 8-bit RGB arrays (CompressAI's convention: PSNR over all channels, peak 255)."""

from __future__ import annotations

import math

import numpy as np
import torch


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ms_ssim_rgb(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM (pytorch_msssim, 5 scales, data range 255) of two [H, W, 3] uint8 images (>= 161 px sides)."""
    from pytorch_msssim import ms_ssim

    ta = torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1)[None].float()
    tb = torch.from_numpy(np.array(b, copy=True)).permute(2, 0, 1)[None].float()
    return float(ms_ssim(ta, tb, data_range=255.0))
