"""Shared fixtures: tiny model configurations and real photo crops (Kodak, read-only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak"

TINY = dict(N=16, M=32, slices=4, channel_hidden=(16, 16), params_hidden=(32, 16, 16), lrp_hidden=(16, 16))
FAMILY = ("mlic", "mlic-plus", "mlic-plusplus")


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """A tiny random-init MLIC+ saved as a weights file (for CLI tests)."""
    from mlic.io import save_model
    from mlic.models import build

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_model(build("mlic-plus", **TINY), path)
    return path


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def kodak_crop(name: str = "kodim05.png", h: int = 256, w: int = 256) -> torch.Tensor:
    """A [1, 3, h, w] crop of a Kodak image in [0, 1]; synthetic texture when Kodak is absent."""
    path = KODAK / name
    if path.exists():
        from PIL import Image

        img = np.array(Image.open(path).convert("RGB"))[:h, :w]
        return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.linspace(0, 8, h), torch.linspace(0, 8, w), indexing="ij")
    base = torch.stack([torch.sin(yy), torch.cos(xx), torch.sin(xx + yy)]) * 0.4 + 0.5
    return (base + 0.05 * torch.rand(3, h, w, generator=g)).clamp(0, 1)[None]
