"""Classic image codecs as codec functions, for RD anchors measured here.

| name | codec and call | quality parameter (default sweep) |
| --- | --- | --- |
| ``jpeg`` | Pillow / libjpeg-turbo, 4:2:0 | ``quality`` 5..95 |
| ``jpeg2000`` | Pillow / OpenJPEG, irreversible, ``mct=1`` | compression ``ratio`` 400..6 |
| ``webp`` | Pillow / libwebp, ``method=6`` (4:2:0 only) | ``quality`` 5..95 |
| ``avif`` | Pillow / libavif + aom, 4:4:4, ``speed=4`` | ``quality`` 10..90 |
| ``jpegxl`` | imagecodecs / libjxl, ``effort=7`` | Butteraugli ``distance`` 12..0.5 |
| ``x265`` | ffmpeg + libx265, HEVC intra 4:4:4 8-bit, ``--tune psnr`` | ``qp`` 47..22 |
| ``vvenc`` | ffmpeg + libvvenc (imageio-ffmpeg 0.8.1), VVC intra 4:2:0 10-bit, ``-qpa 0`` | ``qp`` 47..22 |

Sizes are whole files (Pillow / imagecodecs containers; raw Annex-B bitstreams
with parameter sets for x265 and VVenC). The video codecs get the image as YCbCr
(BT.709, full range), padded right/bottom to a multiple of 8 by edge replication
and cropped back; VVenC's 4:2:0 chroma is the 2x2 mean, upsampled back bilinearly.
Missing pieces raise
:class:`CodecUnavailable` with an install hint.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, features

from ..errors import MlicError
from .runner import Coded, CodecFn

BENCH_HINT = "pip install 'mlic[bench]'"


class CodecUnavailable(MlicError):
    """A classic codec cannot run on this machine (the message says what to install)."""


@dataclass(frozen=True)
class ClassicCodec:
    name: str
    label: str
    parameter: str
    sweep: tuple[float, ...]
    valid: tuple[float, float]  # the parameter's range (inclusive) that the encoder accepts
    _check: Callable[[], None]
    _make: Callable[..., Callable[[np.ndarray], tuple[bytes, np.ndarray, float, float]]]

    def check(self) -> None:
        """Raise :class:`CodecUnavailable` when this codec cannot run here."""
        self._check()

    def check_value(self, value: float) -> None:
        """Raise ValueError unless ``value`` is a setting this codec takes."""
        lo, hi = self.valid
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ValueError(f"{self.name} {self.parameter} must lie in [{lo:g}, {hi:g}], not {value:g}")

    def codec(self, value: float, preset: str | None = None) -> CodecFn:
        """The codec at one quality setting; ``preset`` (x265, vvenc) overrides the default."""
        self.check_value(value)
        self.check()
        run = self._make(value, preset) if preset else self._make(value)

        def fn(rgb: np.ndarray) -> Coded:
            data, decoded, t_enc, t_dec = run(np.ascontiguousarray(rgb, dtype=np.uint8))
            return Coded(8.0 * len(data), decoded, t_enc, t_dec)

        return fn


# -- Pillow codecs ------------------------------------------------------------------
def _pillow_feature(feature: str, what: str) -> Callable[[], None]:
    def check() -> None:
        if not features.check(feature):
            raise CodecUnavailable(f"{what}: this Pillow has no {feature} support (pip install -U pillow)")

    return check


def _pillow(fmt: str, **options) -> Callable[[np.ndarray], tuple[bytes, np.ndarray, float, float]]:
    def run(rgb: np.ndarray):
        img = Image.fromarray(rgb, "RGB")
        buf = io.BytesIO()
        t0 = time.perf_counter()
        img.save(buf, fmt, **options)
        t1 = time.perf_counter()
        data = buf.getvalue()
        with Image.open(io.BytesIO(data)) as dec:
            out = np.asarray(dec.convert("RGB"))
        return data, out, t1 - t0, time.perf_counter() - t1

    return run


def _jpeg(q: float):
    return _pillow("JPEG", quality=int(q))


def _jpeg2000(ratio: float):
    return _pillow("JPEG2000", quality_mode="rates", quality_layers=[float(ratio)], irreversible=True, mct=1)


def _webp(q: float):
    return _pillow("WEBP", quality=int(q), method=6)


def _avif(q: float):
    return _pillow("AVIF", quality=int(q), subsampling="4:4:4", speed=4)


# -- JPEG XL (imagecodecs) ----------------------------------------------------------
def _check_jpegxl() -> None:
    try:
        import imagecodecs
    except ImportError:
        raise CodecUnavailable(f"jpegxl needs imagecodecs: {BENCH_HINT}") from None
    if not getattr(imagecodecs.JPEGXL, "available", True):
        raise CodecUnavailable("jpegxl: this imagecodecs build has no libjxl")


def _jpegxl(distance: float):
    import imagecodecs

    def run(rgb: np.ndarray):
        t0 = time.perf_counter()
        data = bytes(imagecodecs.jpegxl_encode(rgb, distance=float(distance), effort=7))
        t1 = time.perf_counter()
        out = np.asarray(imagecodecs.jpegxl_decode(data), dtype=np.uint8)
        return data, out, t1 - t0, time.perf_counter() - t1

    return run


# -- video codecs through ffmpeg ----------------------------------------------------
@lru_cache(maxsize=None)
def ffmpeg_exe() -> str | None:
    """imageio-ffmpeg's static ffmpeg (libx265 and libvvenc), else one on PATH."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return shutil.which("ffmpeg")


@lru_cache(maxsize=None)
def _ffmpeg_has(encoder: str) -> bool:
    exe = ffmpeg_exe()
    if exe is None:
        return False
    try:
        listing = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split()[1:2] == [encoder] for line in listing.splitlines() if line.strip())


def _check_ffmpeg(encoder: str) -> Callable[[], None]:
    def check() -> None:
        if ffmpeg_exe() is None:
            raise CodecUnavailable(f"{encoder}: no ffmpeg found; {BENCH_HINT} (installs imageio-ffmpeg 0.8.1)")
        if not _ffmpeg_has(encoder):
            raise CodecUnavailable(f"{encoder}: {ffmpeg_exe()} lacks the {encoder} encoder; {BENCH_HINT}")

    return check


KR, KB = 0.2126, 0.0722  # BT.709


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 -> float YCbCr in [0, 1] (BT.709, full range)."""
    x = rgb.astype(np.float64) / 255.0
    y = KR * x[..., 0] + (1 - KR - KB) * x[..., 1] + KB * x[..., 2]
    cb = (x[..., 2] - y) / (2 * (1 - KB)) + 0.5
    cr = (x[..., 0] - y) / (2 * (1 - KR)) + 0.5
    return np.stack([y, cb, cr], -1)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 0.5, ycc[..., 2] - 0.5
    r = y + 2 * (1 - KR) * cr
    b = y + 2 * (1 - KB) * cb
    g = (y - KR * r - KB * b) / (1 - KR - KB)
    return np.clip(np.rint(np.stack([r, g, b], -1) * 255.0), 0, 255).astype(np.uint8)


def _pad8(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.pad(rgb, ((0, (-h) % 8), (0, (-w) % 8), (0, 0)), mode="edge")


def _upsample2(plane: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear 2x upsampling of a chroma plane made by 2x2 means (centred siting)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(plane)[None, None]
    return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()


def _ffmpeg(args: list[str], what: str) -> None:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise CodecUnavailable(f"{what} failed: {last}")


def _x265(qp: float, preset: str = "veryslow"):
    def run(rgb: np.ndarray):
        h, w = rgb.shape[:2]
        padded = _pad8(rgb)
        ph, pw = padded.shape[:2]
        planes = np.clip(np.rint(rgb_to_ycbcr(padded) * 255.0), 0, 255).astype(np.uint8).transpose(2, 0, 1)
        with tempfile.TemporaryDirectory(prefix="mlic-x265-") as tmp:
            src, bit, dec = Path(tmp, "in.yuv"), Path(tmp, "out.hevc"), Path(tmp, "dec.yuv")
            src.write_bytes(planes.tobytes())
            t0 = time.perf_counter()
            _ffmpeg(["-f", "rawvideo", "-pix_fmt", "yuv444p", "-s", f"{pw}x{ph}", "-color_range", "pc", "-i", str(src),
                     "-frames:v", "1", "-c:v", "libx265", "-preset", preset, "-tune", "psnr",
                     "-x265-params", f"qp={int(qp)}:info=0:log-level=error", "-f", "hevc", str(bit)], "x265")  # fmt: skip
            t1 = time.perf_counter()
            _ffmpeg(["-i", str(bit), "-f", "rawvideo", "-pix_fmt", "yuv444p", str(dec)], "HEVC decoding")
            t2 = time.perf_counter()
            data = bit.read_bytes()
            out = np.frombuffer(dec.read_bytes(), np.uint8)[: 3 * ph * pw].reshape(3, ph, pw)
        rgb_out = ycbcr_to_rgb(out.transpose(1, 2, 0).astype(np.float64) / 255.0)
        return data, np.ascontiguousarray(rgb_out[:h, :w]), t1 - t0, t2 - t1

    return run


def _vvenc(qp: float, preset: str = "medium"):
    def run(rgb: np.ndarray):
        h, w = rgb.shape[:2]
        padded = _pad8(rgb)
        ph, pw = padded.shape[:2]
        ycc = rgb_to_ycbcr(padded)
        luma = np.clip(np.rint(ycc[..., 0] * 1023.0), 0, 1023).astype("<u2")
        chroma = ycc[..., 1:].reshape(ph // 2, 2, pw // 2, 2, 2).mean(axis=(1, 3))  # 2x2 means
        chroma = np.clip(np.rint(chroma * 1023.0), 0, 1023).astype("<u2")
        with tempfile.TemporaryDirectory(prefix="mlic-vvenc-") as tmp:
            src, bit, dec = Path(tmp, "in.yuv"), Path(tmp, "out.266"), Path(tmp, "dec.yuv")
            src.write_bytes(luma.tobytes() + chroma[..., 0].tobytes() + chroma[..., 1].tobytes())
            t0 = time.perf_counter()
            _ffmpeg(["-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-s", f"{pw}x{ph}", "-color_range", "pc",
                     "-i", str(src), "-frames:v", "1", "-c:v", "libvvenc", "-preset", preset, "-qp", str(int(qp)),
                     "-qpa", "0", "-f", "rawvideo", str(bit)], "VVenC")  # fmt: skip
            t1 = time.perf_counter()
            _ffmpeg(["-f", "vvc", "-i", str(bit), "-f", "rawvideo", "-pix_fmt", "yuv420p10le", str(dec)], "VVC decoding")
            t2 = time.perf_counter()
            data = bit.read_bytes()
            raw = np.frombuffer(dec.read_bytes(), "<u2")
        n, c = ph * pw, (ph // 2) * (pw // 2)
        y = raw[:n].reshape(ph, pw) / 1023.0
        cb = _upsample2(raw[n : n + c].reshape(ph // 2, pw // 2) / 1023.0, ph, pw)
        cr = _upsample2(raw[n + c : n + 2 * c].reshape(ph // 2, pw // 2) / 1023.0, ph, pw)
        out = ycbcr_to_rgb(np.stack([y, cb, cr], -1))
        return data, np.ascontiguousarray(out[:h, :w]), t1 - t0, t2 - t1

    return run


QUALITY_SWEEP = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
QP_SWEEP = (47, 42, 37, 32, 27, 22)

CODECS: dict[str, ClassicCodec] = {
    c.name: c
    for c in (
        ClassicCodec("jpeg", "JPEG (Pillow, 4:2:0)", "quality", QUALITY_SWEEP, (1, 100), _pillow_feature("jpg", "jpeg"), _jpeg),
        ClassicCodec("jpeg2000", "JPEG 2000 (OpenJPEG)", "ratio", (400, 200, 120, 80, 50, 32, 20, 12, 8), (1, 10000),
                     _pillow_feature("jpg_2000", "jpeg2000"), _jpeg2000),
        ClassicCodec("webp", "WebP (libwebp, 4:2:0)", "quality", QUALITY_SWEEP, (0, 100), _pillow_feature("webp", "webp"), _webp),
        ClassicCodec("avif", "AVIF (libavif+aom, 4:4:4)", "quality", (10, 20, 30, 40, 50, 60, 70, 80, 90), (0, 100),
                     _pillow_feature("avif", "avif"), _avif),
        ClassicCodec("jpegxl", "JPEG XL (libjxl, effort 7)", "distance", (12, 8, 6, 4, 3, 2, 1.5, 1, 0.5), (0, 25),
                     _check_jpegxl, _jpegxl),
        ClassicCodec("x265", "HEVC intra 4:4:4 (x265)", "qp", QP_SWEEP, (0, 51), _check_ffmpeg("libx265"), _x265),
        ClassicCodec("vvenc", "VVC intra 4:2:0 10-bit (VVenC)", "qp", QP_SWEEP, (0, 63), _check_ffmpeg("libvvenc"), _vvenc),
    )
}  # fmt: skip


def get(name: str) -> ClassicCodec:
    if name not in CODECS:
        raise CodecUnavailable(f"unknown codec {name!r}; choose from {', '.join(CODECS)}")
    return CODECS[name]
