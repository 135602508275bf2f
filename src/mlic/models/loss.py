"""Rate-distortion loss (architecture.md §8.1).

- MSE models: ``L = lambda * 255^2 * MSE(x_hat, x) + bpp`` (MSE over all values in [0, 1]);
- MS-SSIM models: ``L = lambda * (1 - MS-SSIM(x_hat, x)) + bpp`` (pytorch_msssim, data range 1).

``bpp = sum over {y, z} of sum(log likelihoods) / (-ln 2 * B * H * W)``. Everything
here is computed in fp32.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MSE_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)
MSSSIM_LAMBDAS = (2.40, 4.58, 8.73, 16.64, 31.73, 60.50)


def bits_per_pixel(likelihoods: dict[str, Tensor], num_pixels: int) -> Tensor:
    return sum(torch.log(l.float()).sum() for l in likelihoods.values()) / (-math.log(2) * num_pixels)


class RateDistortionLoss:
    def __init__(self, lmbda: float, metric: str = "mse") -> None:
        if metric not in ("mse", "ms-ssim"):
            raise ValueError("metric must be 'mse' or 'ms-ssim'")
        self.lmbda, self.metric = float(lmbda), metric

    def __call__(self, out: dict, x: Tensor, lmbda: Tensor | None = None) -> dict[str, Tensor]:
        """``lmbda``: one trade-off per image (variable-rate training) instead of the fixed one;
        the distortion term is then the batch mean of ``lambda_i * D_i``."""
        b, _, h, w = x.shape
        bpp = bits_per_pixel(out["likelihoods"], b * h * w)
        x_hat = out["x_hat"].float()
        per_image = ((x_hat - x) ** 2).flatten(1).mean(1)
        mse = per_image.mean()
        result = {"bpp": bpp, "mse": mse, "psnr": 10 * torch.log10(1.0 / mse.detach().clamp_min(1e-10))}
        weight = self.lmbda if lmbda is None else lmbda.to(per_image)
        if self.metric == "mse":
            result["loss"] = (weight * 255**2 * per_image).mean() + bpp
        else:
            from pytorch_msssim import ms_ssim

            msssim = ms_ssim(x_hat, x, data_range=1.0, size_average=False)
            result["ms-ssim"] = msssim.detach().mean()
            result["loss"] = (weight * (1 - msssim)).mean() + bpp
        return result
