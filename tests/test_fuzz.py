"""Hostile and damaged .mlic files: only mlic's errors escape, nothing hangs, nothing lies,
and header fields cannot make the reader allocate before the file proves it holds the data."""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from conftest import load_script

from mlic.codec import decompress_bytes
from mlic.errors import MlicError
from mlic.io.container import FormatError, Header, MlicFile, TileStreams, peek_header, unpack

fuzz = load_script(Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py")  # the fuzz target, mutators


@pytest.fixture(scope="module")
def model():
    return fuzz.tiny_model()


@pytest.fixture(scope="module")
def seeds(model):
    return fuzz.make_seeds(model)


def test_short_fuzz_run_has_no_escapes_hangs_or_lies(model, seeds):
    # a hang is an input that takes far longer than decoding the largest intact file here:
    # relative to this machine's own speed, so the test means the same on a slow one
    worst = 0.0
    for data in seeds:
        t0 = time.perf_counter()
        decompress_bytes(data, model)
        worst = max(worst, time.perf_counter() - t0)
    counts, escapes, slowest = fuzz.run(1500, seed=1, time_limit=200 * worst, model=model, verbose=False)
    assert escapes == []
    assert sum(counts.values()) == 1500
    # the mutations reach every layer: the parser, the weights check, the coder and the desync guard
    for outcome in ("FormatError", "ModelMismatchError", "CodingError", "DesyncError", "decoded"):
        assert counts[outcome] > 0, counts


def test_truncation_at_every_length_with_and_without_a_repaired_crc(model, seeds):
    data = seeds[3]  # a tiled file: 6 tiles
    for n in range(len(data)):
        for candidate in (data[:n], fuzz.fix_crc(data[:n])):
            with pytest.raises(MlicError):
                decompress_bytes(candidate, model)


def test_a_lie_would_be_caught(model, seeds):
    other = seeds[2]
    ref = decompress_bytes(seeds[1], model)
    with pytest.raises(fuzz.Lie):
        fuzz.target(other, model, ref)  # a valid file that is not the seed's image


def _hostile(height: int, width: int, tile: int, n_tiles: int, records: list[TileStreams] | None = None) -> bytes:
    h = Header("mlic-plus", "custom", 0, b"\0" * 8, 1, 1, "rgb", 8, 0, 0, 1)
    data = bytearray(MlicFile(h, records or [TileStreams((1, 1), (1, 1), (63, 63), b"", b"", [0])]).to_bytes()[:-4])
    off = 4 + 2 + len("mlic-plus") + 3 + 8  # magic, version, name, metric, 16-bit quality, hash
    data[off : off + 8] = struct.pack(">II", height, width)
    data[off + 11 : off + 13] = struct.pack(">H", tile)
    data[off + 14 : off + 18] = struct.pack(">I", n_tiles)
    return bytes(data) + struct.pack(">I", zlib.crc32(bytes(data)))


@pytest.mark.parametrize(
    "height, width, tile, n_tiles, match",
    [
        (32768, 24576, 0, 1, "tiles larger than"),  # a 2.25 GB RGB image as one tile
        (32768, 24576, 2048, 192, "too short for its 192 tiles"),  # the same, tiled
        (1 << 20, 1 << 10, 64, 262144, "too short"),  # 2^30 pixels in 64-pixel tiles
        (1 << 20, 1 << 20, 4096, 65536, "outside the supported range"),  # a terapixel
        (0, 5, 0, 1, "outside the supported range"),
    ],
)
def test_absurd_headers_are_refused_before_allocating(model, height, width, tile, n_tiles, match):
    data = _hostile(height, width, tile, n_tiles)
    assert len(data) < 80  # the header alone is 44 bytes
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match=match):
            decompress_bytes(data, model)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # under 1 MB: nothing sized by the header was allocated


def test_streams_too_short_for_the_promised_image_are_refused_before_decoding(model):
    # a consistent one-tile 4096x4096 header whose streams are a few bytes: the tables say
    # 2^30 symbols need far more bits than that, so nothing is decoded or allocated
    records = [TileStreams((256, 256), (64, 64), (0, 0), b"\1\0\0\0", b"\1\0\0\0", [0, 0, 0, 0])]
    h = Header("mlic-plus", "custom", 0, unpack(fuzz.make_seeds(model)[0]).header.weights_hash, 4096, 4096, "rgb", 8, 0, 0, 1)
    data = MlicFile(h, records).to_bytes()
    assert peek_header(data).height == 4096
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="too short for the image size"):
            decompress_bytes(data, model)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
