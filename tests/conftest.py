"""Shared fixtures: tiny model configurations and real photo crops (committed under tests/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

DATA = Path(__file__).resolve().parent / "data"
KODAK = DATA / "kodak"  # crops of Kodak images (tests/data/README.md)
ANCHORS = DATA / "anchors" / "kodak"  # published RD points

# How torch runs on a CPU without AVX-512 (no bf16 kernels either), emulated on any x86-64.
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}

TINY = dict(N=16, M=32, slices=4, channel_hidden=(16, 16), params_hidden=(32, 16, 16), lrp_hidden=(16, 16))
FAMILY = ("mlic", "mlic-plus", "mlic-plusplus")


def data_file(*parts: str) -> Path:
    """A committed test input; a missing one fails the test and names the file (no fallback)."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"test input {path} is missing (see tests/data/README.md)", pytrace=False)
    return path


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


def kodak_rgb(name: str = "kodim05.png", h: int | None = None, w: int | None = None) -> np.ndarray:
    """The top-left h x w pixels of a committed Kodak crop, uint8 [h, w, 3]."""
    from PIL import Image

    with Image.open(data_file("kodak", name)) as im:
        img = np.asarray(im.convert("RGB"))
    if (h or 0) > img.shape[0] or (w or 0) > img.shape[1]:
        pytest.fail(f"tests/data/kodak/{name} is {img.shape[0]}x{img.shape[1]}, smaller than the {h}x{w} asked for")
    return np.ascontiguousarray(img[:h, :w])


def kodak_crop(name: str = "kodim05.png", h: int = 256, w: int = 256) -> torch.Tensor:
    """A [1, 3, h, w] crop of a Kodak image in [0, 1]."""
    return torch.from_numpy(kodak_rgb(name, h, w).copy()).permute(2, 0, 1)[None].float() / 255
