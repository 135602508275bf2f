"""Reading the images people have, and writing decoded ones back in their original form.

What the codec sees is always 8-bit RGB. What is recorded (and restored on
decoding) is the original channel layout and bit depth:

==========================  ===============================  ==========================
input                       coded as                          decoded to
==========================  ===============================  ==========================
RGB (PNG, JPEG, WebP, ...)  RGB                               RGB PNG
grayscale ``L`` / ``1``     gray replicated to RGB            ``L`` PNG (channel mean)
16-bit grayscale            rounded to 8 bit, replicated      16-bit grayscale PNG (x257)
RGBA, LA, palette+alpha     RGB + alpha plane, lossless zlib  RGBA PNG (alpha exact)
palette ``P``               RGB                               RGB PNG
CMYK, YCbCr, LAB, HSV       converted to RGB                  RGB PNG
==========================  ===============================  ==========================

EXIF orientation is applied before coding. Colour profiles are not carried.
16-bit RGB files are read by Pillow at 8 bits per channel.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MlicError
from .container import MAX_PIXELS

# Pillow's decompression-bomb guard stops at ~179 MP; our documented limit is the container's.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(MlicError):
    """An input image cannot be read, or an output image cannot be written."""


@dataclass
class ImageData:
    rgb: np.ndarray  # [H, W, 3] uint8
    layout: str = "rgb"  # "gray", "rgb" or "rgba"
    bit_depth: int = 8
    alpha: np.ndarray | None = None  # [H, W] uint8 when layout == "rgba"

    @property
    def height(self) -> int:
        return self.rgb.shape[0]

    @property
    def width(self) -> int:
        return self.rgb.shape[1]


def _has_transparency(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)


def from_pil(img: Image.Image) -> ImageData:
    """Normalise a Pillow image to :class:`ImageData` (see the module table)."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float64)
        if mode == "I" and arr.max(initial=0) <= 255:
            gray = np.clip(np.round(arr), 0, 255).astype(np.uint8)
            return ImageData(np.repeat(gray[..., None], 3, axis=2), "gray", 8)
        gray = np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8)
        return ImageData(np.repeat(gray[..., None], 3, axis=2), "gray", 16)
    if mode == "F":
        raise ImageError("floating-point images are not supported; convert to 8- or 16-bit first")
    if mode in ("1", "L"):
        gray = np.asarray(img.convert("L"))
        return ImageData(np.repeat(gray[..., None], 3, axis=2), "gray", 8)
    if _has_transparency(img):
        rgba = np.asarray(img.convert("RGBA"))
        return ImageData(np.ascontiguousarray(rgba[..., :3]), "rgba", 8, np.ascontiguousarray(rgba[..., 3]))
    try:
        rgb = np.asarray(img.convert("RGB"))
    except (ValueError, OSError) as exc:
        raise ImageError(f"unsupported image mode {mode!r} ({exc})") from None
    return ImageData(np.ascontiguousarray(rgb), "rgb", 8)


def read_image(path: str | Path) -> ImageData:
    """Read PNG, JPEG, WebP, TIFF, BMP (anything Pillow opens), EXIF orientation applied."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = ImageOps.exif_transpose(img)
                img.load()
                data = from_pil(img)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: not a readable image ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{path}: cannot decode image ({exc})") from None
    if data.height * data.width > MAX_PIXELS:
        raise ImageError(f"{path}: {data.width}x{data.height} exceeds the {MAX_PIXELS:,}-pixel limit")
    return data


def to_pil(data: ImageData) -> Image.Image:
    """The decoded image in its original layout and depth."""
    if data.layout == "gray":
        mean = data.rgb.astype(np.float32).mean(axis=2)
        if data.bit_depth == 16:
            return Image.fromarray(np.clip(np.round(mean * 257.0), 0, 65535).astype(np.uint16))
        return Image.fromarray(np.clip(np.round(mean), 0, 255).astype(np.uint8))
    if data.layout == "rgba":
        if data.alpha is None:
            raise ImageError("RGBA image without alpha plane")
        return Image.fromarray(np.dstack([data.rgb, data.alpha]))
    return Image.fromarray(data.rgb)


def new_file_mode() -> int:
    """The permissions a plainly created file would get (0666 less the umask); mkstemp uses 0600."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, write, force: bool = False) -> Path:
    """Create ``path`` through a temporary file in the same folder and an atomic rename.

    ``write(fileobj)`` fills the temporary file. An existing ``path`` is never
    replaced unless ``force``; an interruption leaves no partial output.
    """
    path = Path(path)
    if path.exists() and not force:
        raise ImageError(f"{path} exists; use --force to overwrite")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise ImageError(f"cannot write in {folder}: {exc.strerror or exc}") from None
    try:
        os.chmod(tmp, new_file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ImageError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_png(path: str | Path, data: ImageData, force: bool = False) -> Path:
    img = to_pil(data)
    return atomic_write(path, lambda f: img.save(f, format="PNG"), force=force)
