"""Generalized divisive normalization (Balle et al., ICLR 2016), architecture.md §2.2.

``GDN``:  ``y_c = x_c / sqrt(beta_c + sum_k gamma_ck x_k^2)``
``IGDN``: ``y_c = x_c * sqrt(beta_c + sum_k gamma_ck x_k^2)``

``beta`` (>= 1e-6) and ``gamma`` (>= 0) are stored through
:class:`~mlic.nn.bound.NonNegativeParametrizer`; initial ``beta = 1``,
``gamma = 0.1 * I``. C + C^2 parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .bound import NonNegativeParametrizer
from .inference import in_place_ok


class GDN(nn.Module):
    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.gamma_reparam = NonNegativeParametrizer()
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(c, c, 1, 1)
        norm = F.conv2d(x * x, gamma, beta)
        if in_place_ok(norm, x):  # inference: the same products, into the convolution's output
            return (norm.sqrt_() if self.inverse else norm.rsqrt_()).mul_(x)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


def IGDN(channels: int) -> GDN:
    """Inverse GDN."""
    return GDN(channels, inverse=True)
