"""Training data: every PNG, JPEG and WebP under some folders, served as random crops.

Batches are a pure function of ``(seed, step)``: the image, crop position and
flip of every item of the global batch are drawn from a generator seeded with
both. A resumed run therefore sees exactly the data it would have seen, and
``world`` data-parallel processes, each taking its slice of the global batch,
train on exactly what one process with the same global batch would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import MlicError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp"}


class DataError(MlicError):
    """The training data cannot be used."""


def find_images(folders: list[str | Path]) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"{folder}: not a folder")
        files += [p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()]
    files = sorted(set(files))
    if not files:
        raise DataError(f"no PNG, JPEG or WebP images under {', '.join(map(str, folders))}")
    return files


def load_rgb(path: Path, downscale_jpeg: bool = True, max_side: int = 0) -> np.ndarray:
    """8-bit RGB; JPEGs (and images larger than ``max_side``) are downscaled 2x with Lanczos."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        w, h = img.size
        factor = 1
        if downscale_jpeg and path.suffix.lower() in (".jpg", ".jpeg"):
            factor = 2
        while max_side and max(w, h) // factor > max_side:
            factor *= 2
        if factor > 1:
            img = img.resize((w // factor, h // factor), Image.Resampling.LANCZOS)
        return np.asarray(img).copy()


def detail(patch: np.ndarray) -> float:
    """Mean absolute horizontal + vertical difference of the green channel (texture proxy)."""
    g = patch[..., 1].astype(np.int16)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def halve(img: np.ndarray) -> np.ndarray:
    """Antialiased 2x downscale (Lanczos)."""
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((w // 2, h // 2), Image.Resampling.LANCZOS)).copy()


class CropStream:
    """Random crops from an in-memory pool of images (decoded once).

    ``pyramid`` adds each source again at 1/2, 1/4 ... of its loaded size (levels
    smaller than 256 pixels on their short side are skipped): a downscaled photo has
    more detail per pixel. ``candidates`` > 1 draws that many crop positions per item
    and keeps the one with the most detail (``detail``). Both shift the training
    distribution from the wallpapers' smooth bokeh towards Kodak-like texture: the
    pool has about half Kodak's JPEG-q75 bits per pixel (measured; see docs/models.md).
    """

    def __init__(self, folders: list[str | Path], seed: int = 0, downscale_jpeg: bool = True, max_side: int = 0,
                 pyramid: int = 1, candidates: int = 1) -> None:
        if pyramid < 1 or candidates < 1:
            raise DataError("pyramid and candidates must be at least 1")
        self.files = find_images(folders)
        self.seed = int(seed)
        self.candidates = int(candidates)
        self.images = []
        for p in self.files:
            img = load_rgb(p, downscale_jpeg, max_side)
            self.images.append(img)
            for _ in range(pyramid - 1):
                if min(img.shape[:2]) < 512:
                    break
                img = halve(img)
                self.images.append(img)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, step: int, global_batch: int, crop: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        """This rank's share of the global batch of ``step``: [global_batch / world, 3, crop, crop] in [0, 1]."""
        if global_batch % world:
            raise DataError("the global batch must be divisible by the number of processes")
        rng = np.random.default_rng([self.seed, step])
        picks = rng.integers(0, len(self.images), global_batch)
        coords = rng.random((global_batch, self.candidates, 2))
        flips = rng.random(global_batch) < 0.5
        per = global_batch // world
        out = np.empty((per, crop, crop, 3), dtype=np.uint8)
        for j, g in enumerate(range(rank * per, (rank + 1) * per)):
            img = self.images[picks[g]]
            h, w = img.shape[:2]
            if h < crop or w < crop:  # small sources are upscaled just enough
                scale = crop / min(h, w)
                pil = Image.fromarray(img).resize((max(crop, round(w * scale)), max(crop, round(h * scale))), Image.Resampling.BICUBIC)
                img = np.asarray(pil)
                h, w = img.shape[:2]
            best = -1.0
            for top_f, left_f in coords[g]:
                top = int(top_f * (h - crop + 1))
                left = int(left_f * (w - crop + 1))
                cand = img[top : top + crop, left : left + crop]
                score = detail(cand) if self.candidates > 1 else 0.0
                if score > best:
                    best, patch = score, cand
            out[j] = patch[:, ::-1] if flips[g] else patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
