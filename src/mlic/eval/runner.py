"""Run codecs over images and collect an RD curve (one point per quality setting).

A *codec function* takes an 8-bit RGB array and returns a :class:`Coded`: the
size of what it produced (bits of a real file, or an entropy estimate), the
decoded 8-bit RGB array and the encode / decode times. ``run_points`` calls it
for every (quality, image) and averages per quality; learned models
(:func:`model_codec`) and classic codecs (``mlic.eval.classic``) share it.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..io.image import ImageData, read_image
from .results import Results, environment, mean_or_none

MIN_MSSSIM_SIDE = 161  # pytorch_msssim's 5 scales with an 11-tap window


@dataclass
class Coded:
    bits: float
    decoded: np.ndarray  # [H, W, 3] uint8
    encode_s: float
    decode_s: float


CodecFn = Callable[[np.ndarray], Coded]
METRICS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-rgb-db", "encoding_time", "decoding_time")


def read_rgb(path: str | Path) -> np.ndarray:
    """An evaluation input as 8-bit RGB (alpha dropped, gray replicated)."""
    return np.ascontiguousarray(read_image(path).rgb)


def measure(rgb: np.ndarray, coded: Coded) -> dict:
    from .metrics import ms_ssim_rgb, psnr_rgb  # torch: only when measuring

    if coded.decoded.shape != rgb.shape or coded.decoded.dtype != np.uint8:
        raise ValueError(f"decoded image has shape {coded.decoded.shape}, expected {rgb.shape} uint8")
    h, w = rgb.shape[:2]
    msssim = ms_ssim_rgb(rgb, coded.decoded) if min(h, w) >= MIN_MSSSIM_SIDE else None
    psnr = psnr_rgb(rgb, coded.decoded)
    return {
        "bpp": coded.bits / (h * w),
        "psnr-rgb": psnr if math.isfinite(psnr) else 100.0,  # lossless: capped, JSON has no infinity
        "ms-ssim-rgb": msssim,
        "ms-ssim-rgb-db": None if msssim is None else -10 * math.log10(max(1e-10, 1 - msssim)),
        "encoding_time": coded.encode_s,
        "decoding_time": coded.decode_s,
    }


def run_points(
    name: str,
    points: list[tuple[float, CodecFn]],
    images: list[Path],
    *,
    description: str = "",
    bpp_kind: str = "bitstream",
    progress: bool = True,
    extra: dict | None = None,
) -> Results:
    """Every codec function on every image; ``points`` is [(quality value, function)]."""
    from tqdm import tqdm

    pixels = {p: read_rgb(p) for p in images}
    bar = tqdm(total=len(points) * len(images), desc=name, unit="img", file=sys.stderr, disable=not progress, leave=False)
    rows = []
    for _, fn in points:
        rows.append([])
        for p in images:
            rows[-1].append(measure(pixels[p], fn(pixels[p])))
            bar.update()
    bar.close()
    return curve(name, [q for q, _ in points], images, rows, description=description, bpp_kind=bpp_kind, extra=extra)


def curve(name: str, qualities: list[float], images: list[Path], rows: list[list[dict]], *, description: str = "",
          bpp_kind: str = "bitstream", extra: dict | None = None) -> Results:
    """The RD curve of measured rows (``rows[point][image]``, from :func:`measure`): the mean of
    each metric per quality, and every image's values."""
    per_image: dict[str, dict[str, list]] = {p.name: {k: [] for k in METRICS} for p in images}
    series: dict[str, list] = {"quality": [], **{k: [] for k in METRICS}}
    for quality, point_rows in zip(qualities, rows):
        for p, row in zip(images, point_rows):
            for k in METRICS:
                per_image[p.name][k].append(row[k])
        series["quality"].append(quality)
        for k in METRICS:
            series[k].append(mean_or_none([r[k] for r in point_rows]))
    info = {"bpp_kind": bpp_kind, "images": len(images), "per_image": per_image, "environment": environment()}
    info.update(extra or {})
    return Results(name, series, description, info)


def model_codec(model, *, estimate: bool = False, quality: float = 0, metric: str = "custom", **search) -> CodecFn:
    """A learned model as a codec function: a real ``.mlic`` file, or the entropy estimate.

    ``quality``: in the header; the rate of a variable-rate model.
    ``search``: ``refine``, ``lmbda``, ``search_metric`` of :func:`mlic.codec.compress_image`.
    """
    import torch

    from ..codec import compress_image, decompress_bytes
    from ..io.tensor import rgb_to_tensor, tensor_to_rgb

    def real(rgb: np.ndarray) -> Coded:
        t0 = time.perf_counter()
        data = compress_image(model, ImageData(rgb), quality=quality, metric=metric, **search)
        t1 = time.perf_counter()
        out = decompress_bytes(data, model)
        t2 = time.perf_counter()
        return Coded(8.0 * len(data), out.rgb, t1 - t0, t2 - t1)

    def estimated(rgb: np.ndarray) -> Coded:
        x = rgb_to_tensor(rgb)
        model.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model(x, quality if model.config.variable_rate else None)
        bits = sum(float(-torch.log2(v).sum()) for v in out["likelihoods"].values())
        dec = tensor_to_rgb(out["x_hat"])
        return Coded(bits, dec, time.perf_counter() - t0, 0.0)

    return estimated if estimate else real
