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

EXIF orientation is applied before coding. The ICC profile, EXIF (orientation then 1) and XMP
are read into ``ImageData.metadata`` and written back into decoded PNGs byte for byte
(:mod:`mlic.io.metadata`); which of them a file keeps is the encoder's choice (``--metadata``).
Of a multi-frame image (GIF, APNG, WebP, TIFF pages) the first frame is read; ``frames`` says
how many there were. 16-bit RGB files are read by Pillow at 8 bits per channel.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MlicError
from .container import MAX_PIXELS
from .files import atomic_write, check_input_file
from .metadata import from_pil as metadata_from_pil
from .metadata import pil_save_options

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
    metadata: dict[str, bytes] = field(default_factory=dict)  # "icc", "exif", "xmp" (io.metadata)
    frames: int = 1  # frames of the source (only the first is coded)

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
    check_input_file(path, ImageError)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                upright = ImageOps.exif_transpose(img)
                upright.load()
                data = from_pil(upright)
                data.metadata = metadata_from_pil(img, upright, data.layout)
                data.frames = int(getattr(img, "n_frames", 1))
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


def write_png(path: str | Path, data: ImageData, force: bool = False) -> Path:
    img = to_pil(data)
    options = pil_save_options(data.metadata)
    return atomic_write(path, lambda f: img.save(f, format="PNG", **options), force=force)
