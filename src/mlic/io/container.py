"""The ``.mlic`` file: serialisation and validation (byte layout in docs/format.md).

Everything here is plain bytes and integers; no network is touched. A file is
refused (:class:`FormatError`) unless its magic, version, every length field and
its trailing CRC-32 are consistent, before any decoding starts.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from ..errors import MlicError
from ..models.config import PAD, QUALITY_SCALE, coded_geometry, quality_code

MAGIC = b"MLIC"
VERSION = 5  # written; versions 1-4 are still read (docs/format.md, "Versions")
READABLE_VERSIONS = (1, 2, 3, 4, 5)
# version 4 records the quality in 1/256 steps (16 bits, QUALITY_SCALE); earlier ones a whole number (8 bits)
MIN_TILE_RECORD = 8 + 2 + 4 + 4 + 1  # shapes, padding, two stream lengths, checksum count
HASH_BYTES = 8
MAX_PIXELS = 1 << 30  # documented limit: about 1 gigapixel
MAX_SIDE = 1 << 20
MAX_TILE = 4096  # largest tile side (and largest side of a one-tile image): bounds decoding memory
DEFAULT_TILE = 2048  # what encoders use unless told otherwise
METRICS = {0: "mse", 1: "ms-ssim", 255: "custom"}
LAYOUTS = {1: "gray", 3: "rgb", 4: "rgba"}
ALPHA_NONE, ALPHA_OPAQUE, ALPHA_STREAM = 0, 1, 2
# Metadata records (version 5): tag, and the largest size a reader accepts (an ICC profile of
# a camera or display is 0.5-60 KB, a printer's up to a few MB; EXIF fits one JPEG segment).
METADATA = {"icc": (b"ICCP", 4 << 20), "exif": (b"EXIF", 1 << 16), "xmp": (b"XMP ", 1 << 20)}


class FormatError(MlicError):
    """Not a valid .mlic file (wrong magic, version, lengths or checksum)."""


@dataclass
class Header:
    model: str
    metric: str
    quality: float  # a multiple of 1/256 (version 4); a whole number 0-255 in versions 1-3
    weights_hash: bytes
    height: int
    width: int
    layout: str  # "gray", "rgb" or "rgba"
    bit_depth: int  # 8 or 16
    alpha: int  # ALPHA_NONE, ALPHA_OPAQUE or ALPHA_STREAM
    tile: int  # tile side in pixels (multiple of 64); 0 = one tile covering the image
    check_group: int  # slices per symbol checksum
    version: int = VERSION  # format version (docs/format.md, "Versions")

    def tiles(self) -> list[tuple[int, int, int, int]]:
        """(top, left, height, width) of every tile, row-major."""
        if self.tile == 0:
            return [(0, 0, self.height, self.width)]
        return [
            (t, l, min(self.tile, self.height - t), min(self.tile, self.width - l))
            for t in range(0, self.height, self.tile)
            for l in range(0, self.width, self.tile)
        ]


@dataclass
class TileStreams:
    latent: tuple[int, int]  # y height, width
    hyper: tuple[int, int]  # z height, width
    padding: tuple[int, int]  # bottom, right padding in pixels
    z: bytes
    y: bytes
    checks: list[int] = field(default_factory=list)


@dataclass
class MlicFile:
    header: Header
    tiles: list[TileStreams]
    alpha: bytes = b""  # zlib-compressed alpha plane when header.alpha == ALPHA_STREAM
    # what the image carried besides pixels, stored as it was: "icc" (colour profile), "exif",
    # "xmp" (version 5; kept in METADATA's order, each at most once)
    metadata: dict[str, bytes] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return pack(self)


def check_tile(tile: int) -> None:
    """A tile side an encoder may use: a positive multiple of 64, at most MAX_TILE (ValueError)."""
    if tile % PAD or not 0 < tile <= MAX_TILE:
        raise ValueError(f"tile size must be a positive multiple of {PAD}, at most {MAX_TILE}")


def _metric_code(metric: str) -> int:
    for code, name in METRICS.items():
        if name == metric:
            return code
    raise ValueError(f"unknown metric {metric!r}")


def _layout_code(layout: str) -> int:
    for code, name in LAYOUTS.items():
        if name == layout:
            return code
    raise ValueError(f"unknown channel layout {layout!r}")


def _pack_quality(quality: float, version: int) -> bytes:
    if version >= 4:
        code = quality_code(quality)
        if not (0 <= code <= 0xFFFF and code == quality * QUALITY_SCALE):
            raise ValueError(f"quality {quality!r} is not a multiple of 1/{QUALITY_SCALE} in 0-255.996")
        return struct.pack(">H", code)
    if not (quality == int(quality) and 0 <= quality <= 255):
        raise ValueError(f"format version {version} records whole qualities 0-255, not {quality!r}")
    return struct.pack(">B", int(quality))


def pack(f: MlicFile) -> bytes:
    h = f.header
    name = h.model.encode("ascii")
    if h.version not in READABLE_VERSIONS:
        raise ValueError(f"cannot write format version {h.version}")
    if not 0 < len(name) < 256 or len(h.weights_hash) != HASH_BYTES:
        raise ValueError("model name must be 1-255 ASCII bytes and the weights hash 8 bytes")
    out = bytearray(MAGIC)
    out += struct.pack(">BB", h.version, len(name)) + name
    out += struct.pack(">B", _metric_code(h.metric)) + _pack_quality(h.quality, h.version) + h.weights_hash
    out += struct.pack(">IIBBBHBI", h.height, h.width, _layout_code(h.layout), h.bit_depth, h.alpha,
                       h.tile, h.check_group, len(f.tiles))  # fmt: skip
    out += _pack_metadata(f.metadata, h.version)
    for t in f.tiles:
        out += struct.pack(">HHHHBB", *t.latent, *t.hyper, *t.padding)
        out += struct.pack(">I", len(t.z)) + t.z
        out += struct.pack(">I", len(t.y)) + t.y
        out += struct.pack(">B", len(t.checks)) + b"".join(struct.pack(">H", c) for c in t.checks)
    if h.alpha == ALPHA_STREAM:
        out += struct.pack(">I", len(f.alpha)) + f.alpha
    out += struct.pack(">I", zlib.crc32(out))
    return bytes(out)


def check_metadata(metadata: dict[str, bytes], version: int) -> None:
    """Whether a file of ``version`` can carry ``metadata`` (ValueError saying why not): known
    kinds, each within its limit, and version 5 or later when there is any."""
    unknown = set(metadata) - set(METADATA)
    if unknown:
        raise ValueError(f"unknown metadata {sorted(unknown)} (known: {', '.join(METADATA)})")
    if version < 5 and any(metadata.values()):
        raise ValueError(f"format version {version} cannot carry metadata ({', '.join(metadata)}); use 5")
    for key, data in metadata.items():
        if len(data) > METADATA[key][1]:
            raise ValueError(f"{key} metadata of {len(data):,} bytes is over the {METADATA[key][1]:,}-byte limit")


def _pack_metadata(metadata: dict[str, bytes], version: int) -> bytes:
    check_metadata(metadata, version)
    if version < 5:
        return b""
    records = [(METADATA[key][0], metadata[key]) for key in METADATA if metadata.get(key)]
    out = bytearray(struct.pack(">B", len(records)))
    for tag, data in records:
        out += tag + struct.pack(">I", len(data)) + data
    return bytes(out)


def _parse_metadata(r: "_Reader") -> dict[str, bytes]:
    (count,) = r.unpack(">B", "metadata count")
    if count > len(METADATA):
        raise FormatError(f"{count} metadata records (at most {len(METADATA)})")
    by_tag = {tag: (i, key, limit) for i, (key, (tag, limit)) in enumerate(METADATA.items())}
    out, last = {}, -1
    for _ in range(count):
        tag = r.take(4, "metadata tag")
        (length,) = r.unpack(">I", "metadata length")
        if tag not in by_tag:
            raise FormatError(f"unknown metadata record {tag!r}")
        order, key, limit = by_tag[tag]
        if order <= last:
            raise FormatError("metadata records repeated or out of order")
        if length == 0 or length > limit:
            raise FormatError(f"{key} metadata length {length:,} is outside 1-{limit:,}")
        out[key], last = r.take(length, f"{key} metadata"), order
    return out


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError(f"truncated file: {what} runs past the end")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def peek_header(data: bytes) -> Header:
    """Parse and validate only the header (no CRC check): for `mlic info` on damaged files."""
    return peek(data).header


def peek(data: bytes) -> MlicFile:
    """The header and the metadata records, validated, without the tiles (no CRC check)."""
    return _parse(data, verify_crc=False, header_only=True)


def unpack(data: bytes) -> MlicFile:
    """Parse and fully validate a .mlic file."""
    return _parse(data, verify_crc=True, header_only=False)


def _parse(data: bytes, verify_crc: bool, header_only: bool) -> MlicFile:
    data = bytes(data)
    if len(data) < 4 or data[:4] != MAGIC:
        raise FormatError("not an .mlic file (bad magic bytes)")
    if verify_crc:
        if len(data) < 8:
            raise FormatError("truncated file")
        (crc,) = struct.unpack(">I", data[-4:])
        if zlib.crc32(data[:-4]) != crc:
            raise FormatError("file is corrupted (CRC-32 mismatch)")
        data = data[:-4]
    r = _Reader(data)
    r.take(4, "magic")
    version, name_len = r.unpack(">BB", "header")
    if version not in READABLE_VERSIONS:
        raise FormatError(f"unsupported .mlic format version {version} (this mlic reads versions {READABLE_VERSIONS[0]} to {READABLE_VERSIONS[-1]})")
    try:
        model = r.take(name_len, "model name").decode("ascii")
    except UnicodeDecodeError:
        raise FormatError("model name is not ASCII") from None
    (metric_code,) = r.unpack(">B", "header")
    if version >= 4:
        (code,) = r.unpack(">H", "header")
        quality = code / QUALITY_SCALE
    else:
        (quality,) = r.unpack(">B", "header")
    weights_hash = r.take(HASH_BYTES, "weights hash")
    height, width, layout, depth, alpha, tile, group, n_tiles = r.unpack(">IIBBBHBI", "header")
    if metric_code not in METRICS:
        raise FormatError(f"unknown metric code {metric_code}")
    if layout not in LAYOUTS:
        raise FormatError(f"unknown channel layout code {layout}")
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE and height * width <= MAX_PIXELS):
        raise FormatError(f"image size {width}x{height} is outside the supported range")
    if depth not in (8, 16) or alpha not in (ALPHA_NONE, ALPHA_OPAQUE, ALPHA_STREAM):
        raise FormatError("invalid bit depth or alpha mode")
    if (alpha != ALPHA_NONE) != (LAYOUTS[layout] == "rgba"):
        raise FormatError("alpha mode does not match the channel layout")
    if tile % PAD or group == 0:
        raise FormatError("invalid tile size or checksum group")
    if tile > MAX_TILE or (tile == 0 and max(height, width) > MAX_TILE):
        raise FormatError(f"tiles larger than {MAX_TILE} pixels a side are not supported (decoding memory limit)")
    header = Header(model, METRICS[metric_code], quality, weights_hash, height, width, LAYOUTS[layout],
                    depth, alpha, tile, group, version)  # fmt: skip
    metadata = _parse_metadata(r) if version >= 5 else {}
    side = tile or max(height, width)
    implied = -(-height // side) * -(-width // side)  # counted before any tile list is built
    if n_tiles != implied:
        raise FormatError(f"file declares {n_tiles} tiles, the header geometry has {implied}")
    if not header_only and n_tiles * MIN_TILE_RECORD > len(data) - r.pos:
        raise FormatError(f"file is too short for its {n_tiles} tiles (truncated)")
    regions = header.tiles()
    if header_only:
        return MlicFile(header, [], metadata=metadata)
    tiles = []
    for _, _, th, tw in regions:
        ly, lx, hy, hx, pb, pr = r.unpack(">HHHHBB", "tile header")
        latent, hyper, padding = coded_geometry(th, tw)
        if (ly, lx) != latent or (hy, hx) != hyper or (pb, pr) != padding:
            raise FormatError("tile shapes do not match the image size")
        (zl,) = r.unpack(">I", "z length")
        z = r.take(zl, "z stream")
        (yl,) = r.unpack(">I", "y length")
        y = r.take(yl, "y stream")
        (nc,) = r.unpack(">B", "checksum count")
        checks = list(struct.unpack(f">{nc}H", r.take(2 * nc, "checksums")))
        tiles.append(TileStreams(latent, hyper, padding, z, y, checks))
    alpha_bytes = b""
    if alpha == ALPHA_STREAM:
        (al,) = r.unpack(">I", "alpha length")
        alpha_bytes = r.take(al, "alpha stream")
    if verify_crc and r.pos != len(data):
        raise FormatError(f"{len(data) - r.pos} unexpected trailing bytes")
    return MlicFile(header, tiles, alpha_bytes, metadata)
