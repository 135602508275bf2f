"""Images to ``.mlic`` bytes and back: tiling, alpha, the desync guard, model checks.

This is the layer the command line uses. Pixels enter as :class:`~mlic.io.image.ImageData`
(8-bit RGB plus the original layout), are split into tiles of at most
``tile x tile`` pixels (each coded independently, so memory stays bounded for
any image size), and leave as a :class:`~mlic.io.container.MlicFile`.
"""

from __future__ import annotations

import zlib
from typing import Callable, Iterator

import numpy as np
import torch

from .errors import DesyncError, MlicError
from .io.container import (
    ALPHA_NONE,
    ALPHA_OPAQUE,
    ALPHA_STREAM,
    DEFAULT_TILE,
    HASH_BYTES,
    READABLE_VERSIONS,
    VERSION,
    FormatError,
    Header,
    MlicFile,
    TileStreams,
    check_metadata,
    check_tile,
    unpack,
)
from .io.image import ImageData
from .io.tensor import rgb_to_tensor, tensor_to_rgb
from .io.weights import model_digest
from .models import MLIC
from .models.config import coded_geometry
from .models.refine import refine_latent
from .models.slices import SymbolChecks


class ModelMismatchError(MlicError):
    """A file was made with other weights than the ones offered to decode it."""


def coding_options(version: int) -> dict:
    """How format ``version`` codes its symbols: the keyword arguments of ``MLIC.compress`` and
    ``MLIC.decompress`` (version 2 adds z to the checksums, version 3 a float64 probability path)."""
    return {"z_in_checks": version >= 2, "probability_dtype": torch.float64 if version >= 3 else torch.float32}


def weights_tag(model: MLIC) -> bytes:
    """The first 8 bytes of the weights' SHA-256: how a file names its weights."""
    return bytes.fromhex(model_digest(model))[:HASH_BYTES]


def _tile_side(h: int, w: int, tile: int) -> int:
    check_tile(tile)
    return 0 if h <= tile and w <= tile else tile


def compress_image(
    model: MLIC,
    image: ImageData,
    *,
    quality: float = 0,
    metric: str = "custom",
    tile: int = DEFAULT_TILE,
    verify: bool = False,
    refine: int = 0,
    lmbda: float | None = None,
    search_metric: str | None = None,
    version: int = VERSION,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """Encode ``image`` into the bytes of a ``.mlic`` file.

    ``verify=True`` decodes every tile again in this process and checks the
    latent is reproduced bit for bit before returning. ``refine > 0`` runs that many
    steps of the encoder-side latent search per tile (:func:`mlic.models.refine.refine_latent`)
    for the model's trade-off ``lmbda`` and distortion ``search_metric`` (default: ``metric``
    when it is "ms-ssim", else "mse"): slower encoding, a smaller or better file, the same
    decoder. ``version``: the format version to write (any readable one; older ones for tests).
    ``quality``: recorded in the header; for a variable-rate model, the rate to code at (any
    number in its range, rounded to 1/256 as the file records it). ``image.metadata`` (ICC
    profile, EXIF, XMP) is stored as it is (version 5); drop what should not travel first.
    ``progress(done, total)``: called as the work advances (g_a and each slice of each tile;
    :func:`progress_units`); the latent search and ``verify`` are not counted.
    """
    if version not in READABLE_VERSIONS:
        raise ValueError(f"cannot write format version {version}")
    check_metadata(image.metadata, version)  # before the encode, not after it
    rate = None
    if model.config.variable_rate:
        if version < 4:
            raise ValueError("variable-rate weights need format version 4 or later")
        quality = rate = model.check_quality(quality)
        if lmbda is None:
            lmbda = model.rate_lambda(rate)
    if refine and lmbda is None:
        raise MlicError("the latent search needs the model's lambda")
    search_metric = search_metric or ("ms-ssim" if metric == "ms-ssim" else "mse")
    model.update()
    header = Header(
        model=model.config.name, metric=metric, quality=quality, weights_hash=weights_tag(model),
        height=image.height, width=image.width, layout=image.layout, bit_depth=image.bit_depth,
        alpha=ALPHA_NONE, tile=_tile_side(image.height, image.width, tile),
        check_group=model.default_check_group(), version=version,
    )  # fmt: skip
    options = coding_options(version)
    tick = _ticker(progress, progress_units(model, len(header.tiles())))
    tiles = []
    for top, left, th, tw in header.tiles():
        x = rgb_to_tensor(image.rgb[top : top + th, left : left + tw])
        y = refine_latent(model, x, lmbda, refine, metric=search_metric, quality=rate) if refine else None
        enc = model.compress(x, check_group=header.check_group, y=y, quality=rate, progress=tick, **options)
        latent, hyper, padding = coded_geometry(th, tw)
        assert tuple(enc["y_hat"].shape[-2:]) == latent and tuple(enc["shape"]) == hyper
        streams = TileStreams(latent, hyper, padding, enc["strings"][1][0], enc["strings"][0][0], enc["checks"][0])
        if verify:
            dec = model.decompress(enc["strings"], enc["shape"], (th, tw), checks=enc["checks"],
                                   check_group=header.check_group, quality=rate, **options)  # fmt: skip
            if not torch.equal(dec["y_hat"], enc["y_hat"]):
                raise DesyncError(f"verification failed: tile at ({top}, {left}) does not decode exactly")
        tiles.append(streams)
    alpha = b""
    if image.layout == "rgba":
        if image.alpha is None or image.alpha.shape != image.rgb.shape[:2]:
            raise MlicError("RGBA image without a matching alpha plane")
        if (image.alpha == 255).all():
            header.alpha = ALPHA_OPAQUE
        else:
            header.alpha = ALPHA_STREAM
            alpha = zlib.compress(np.ascontiguousarray(image.alpha, dtype=np.uint8).tobytes(), 9)
    return MlicFile(header, tiles, alpha, dict(image.metadata)).to_bytes()


def progress_units(model: MLIC, tiles: int) -> int:
    """How many steps a progress report counts for an image of ``tiles`` tiles: per tile, the
    transform (g_a or g_s) and each slice."""
    return tiles * (model.slices + 1)


def _ticker(progress: Callable[[int, int], None] | None, total: int) -> Callable[[], None] | None:
    """The model's one-step tick, turned into ``progress(done, total)`` calls."""
    if progress is None:
        return None
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        progress(done, total)

    return tick


def check_model(header: Header, model: MLIC) -> None:
    """Refuse to decode with weights other than the encoder's."""
    if header.model != model.config.name:
        raise ModelMismatchError(f"file needs model {header.model!r}, got {model.config.name!r}")
    if header.weights_hash != weights_tag(model):
        raise ModelMismatchError(
            f"file was encoded with other {header.model} weights (hash {header.weights_hash.hex()}, "
            f"offered {weights_tag(model).hex()})"
        )


def _decode_alpha(header: Header, payload: bytes) -> np.ndarray:
    n = header.height * header.width
    d = zlib.decompressobj()
    try:
        raw = d.decompress(payload, n + 1)
    except zlib.error as exc:
        raise FormatError(f"alpha plane is corrupted ({exc})") from None
    if len(raw) != n or d.unconsumed_tail or not d.eof:
        raise FormatError("alpha plane has the wrong size")
    return np.frombuffer(raw, dtype=np.uint8).reshape(header.height, header.width)


def check_stream_sizes(f: MlicFile, model: MLIC) -> None:
    """Refuse streams too short to hold the symbols the header implies, before any decoding.

    Every symbol costs at least ``min_bits`` (its table's largest probability), so a
    small file cannot make the decoder run, and allocate for, a huge image.
    """
    y_bits = model.gaussian_conditional.coder_tables().min_bits()
    z_bits = model.entropy_bottleneck.coder_tables().min_bits()
    slack = 64 + 32  # the coder's state and last partial word
    for i, t in enumerate(f.tiles):
        need_y = model.config.M * t.latent[0] * t.latent[1] * y_bits
        need_z = model.entropy_bottleneck.channels * t.hyper[0] * t.hyper[1] * z_bits
        if 8 * len(t.y) + slack < 0.99 * need_y or 8 * len(t.z) + slack < 0.99 * need_z:
            raise FormatError(f"tile {i}: entropy-coded streams are too short for the image size (truncated or forged file)")


def decode_tiles(
    f: MlicFile, model: MLIC, progress: Callable[[int, int], None] | None = None
) -> Iterator[tuple[tuple[int, int, int, int], dict]]:
    """``((top, left, height, width), model.decompress(...))`` of every tile, in order (what
    :func:`decompress_file` assembles). The model and the stream sizes are checked now, before
    the caller allocates anything the header asks for; tiles are decoded as they are taken.
    ``progress(done, total)`` as in :func:`compress_image` (each slice and g_s of each tile)."""
    header = f.header
    check_model(header, model)
    n_checks = SymbolChecks.count(model.slices, header.check_group)
    if any(len(t.checks) != n_checks for t in f.tiles):
        raise FormatError(f"each tile needs {n_checks} symbol checksums for this model")
    rate = None
    if model.config.variable_rate:
        low, high = model.config.quality_range
        if header.version < 4 or not low <= header.quality <= high:
            raise FormatError(f"quality {header.quality:g} is outside the range {low}-{high} of its weights")
        rate = header.quality
    model.update()
    check_stream_sizes(f, model)
    options = coding_options(header.version)
    tick = _ticker(progress, progress_units(model, len(f.tiles)))

    def tiles() -> Iterator[tuple[tuple[int, int, int, int], dict]]:
        for (top, left, th, tw), t in zip(header.tiles(), f.tiles):
            dec = model.decompress([[t.y], [t.z]], t.hyper, (th, tw), checks=[t.checks],
                                   check_group=header.check_group, quality=rate, progress=tick, **options)  # fmt: skip
            yield (top, left, th, tw), dec

    return tiles()


def decompress_file(f: MlicFile, model: MLIC, progress: Callable[[int, int], None] | None = None) -> ImageData:
    """Decode a parsed file with ``model`` (checked against the header first); ``progress`` as in
    :func:`decode_tiles`."""
    header = f.header
    tiles = decode_tiles(f, model, progress)  # checks first
    rgb = np.empty((header.height, header.width, 3), dtype=np.uint8)
    for (top, left, th, tw), dec in tiles:
        rgb[top : top + th, left : left + tw] = tensor_to_rgb(dec["x_hat"])
    alpha = None
    if header.alpha == ALPHA_OPAQUE:
        alpha = np.full((header.height, header.width), 255, dtype=np.uint8)
    elif header.alpha == ALPHA_STREAM:
        alpha = _decode_alpha(header, f.alpha)
    return ImageData(rgb, header.layout, header.bit_depth, alpha, dict(f.metadata))


def decompress_bytes(data: bytes, model: MLIC) -> ImageData:
    """Parse, validate and decode the bytes of a ``.mlic`` file."""
    return decompress_file(unpack(data), model)
