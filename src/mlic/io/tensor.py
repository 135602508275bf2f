"""8-bit RGB pixels <-> the models' input and output tensors: the one place that converts.

The input tensor is contiguous NCHW: every caller (codec, estimates, training validation) gives
the transforms the same memory layout, so the same pixels give the same bf16 results.
"""

from __future__ import annotations

import numpy as np
import torch


def rgb_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [1, 3, H, W] in [0, 1]."""
    return torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float().div_(255.0).contiguous()


def tensor_to_rgb(x_hat: torch.Tensor) -> np.ndarray:
    """A decoded [1, 3, H, W] tensor (any range) -> uint8 [H, W, 3], clamped and rounded."""
    return x_hat[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
