"""Shared fixtures: tiny model configurations and real photo crops (committed under tests/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

DATA = Path(__file__).resolve().parent / "data"
KODAK = DATA / "kodak"  # crops of Kodak images (tests/data/README.md)
ANCHORS = DATA / "anchors" / "kodak"  # published RD points

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


def synthetic_photos(folder: Path, count: int, h: int, w: int, seed: int, noise: float, jpeg_every: int = 0) -> Path:
    """``count`` synthetic training images (stripes, rings and a ramp, plus Gaussian noise): PNGs,
    or every ``jpeg_every``-th one a JPEG. Deterministic in ``seed``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(count):
        base = np.stack([128 + 90 * np.sin(xx / (3 + i) + i), 128 + 80 * np.cos(yy / (2 + i) + xx / 9), (xx + 3 * yy) % 256], 2)
        img = np.clip(base + rng.normal(0, noise, base.shape), 0, 255).astype(np.uint8)
        jpeg = jpeg_every and i % jpeg_every == 0
        Image.fromarray(img).save(folder / f"p{i}.{'jpg' if jpeg else 'png'}")
    return folder


def load_script(path: Path):
    """A script or benchmark of the repository (not a package module) loaded as a module."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader(f"mlic_script_{path.stem.replace('-', '_')}", str(path))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def display_p3_profile(description: str = "Display P3 (mlic test)") -> bytes:
    """A small ICC v2 RGB matrix/TRC profile with Display P3's primaries (D50-adapted) and a 2.2
    gamma, built here byte by byte (no profile file is committed): what a phone photo carries."""
    import struct

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)

    text = description.encode("ascii") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    curv = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    tags = [(b"desc", desc), (b"cprt", b"text\0\0\0\0CC0\0"), (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
            (b"rXYZ", xyz(0.5151, 0.2412, -0.0011)), (b"gXYZ", xyz(0.2920, 0.6922, 0.0419)),
            (b"bXYZ", xyz(0.1571, 0.0666, 0.7841)), (b"rTRC", curv), (b"gTRC", curv), (b"bTRC", curv)]  # fmt: skip
    table, body = bytearray(struct.pack(">I", len(tags))), bytearray()
    start = 128 + 4 + 12 * len(tags)
    for sig, data in tags:
        table += sig + struct.pack(">II", start + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    size = 128 + len(table) + len(body)
    header = (struct.pack(">I", size) + b"\0\0\0\0" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + bytes(12) + b"acsp"
              + bytes(4 + 4 + 4 + 4 + 8 + 4) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(4 + 16 + 28))  # fmt: skip
    assert len(header) == 128
    return bytes(header + table + body)


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
