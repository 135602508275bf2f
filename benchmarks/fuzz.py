"""Fuzz the .mlic reader and decoder: only mlic's own errors may escape, nothing may hang.

    python benchmarks/fuzz.py [--inputs 100000] [--seed 0] [--time-limit 5] [--threads 1]

Seeds are real files made by a tiny MLIC+ model (gray, RGB, RGBA with an alpha stream,
1x1, 17x9, tiled). Every input is one mutation of a seed: bit flips, truncation, byte
insertion or deletion, random field values, swapped / duplicated / emptied streams, absurd
header fields (zero or huge sizes, tile counts, unknown model, wrong weights hash). Half of
the byte-level mutations get their CRC-32 repaired so the input goes past the checksum into
the deeper checks and the decoder. Each input is parsed (``unpack``), its header printed
(``peek_header``, as ``mlic info`` does) and decoded (``decompress_bytes``). Outcomes are
counted by exception class; anything that is not an ``MlicError``, takes longer than
--time-limit seconds, or decodes without an error to an image other than its seed's (a lie)
is an escape, printed with its mutation. Exit code 1 when any escaped.
"""

from __future__ import annotations

import argparse
import random
import signal
import struct
import sys
import time
import zlib
from collections import Counter

import numpy as np
import torch

from mlic.codec import compress_image, decompress_bytes
from mlic.errors import MlicError
from mlic.io.container import peek_header, unpack
from mlic.io.image import ImageData
from mlic.models import build

TINY = dict(N=16, M=32, slices=4, channel_hidden=(16, 16), params_hidden=(32, 16, 16), lrp_hidden=(16, 16))
INTERESTING = [0, 1, 2, 63, 64, 65, 127, 128, 255, 256, 4095, 65535, 65536, 1 << 20, (1 << 20) + 1,
               1 << 30, (1 << 31) - 1, 1 << 31, (1 << 32) - 1]  # fmt: skip


class Hang(Exception):
    pass


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build("mlic-plus", **TINY).eval()
    model.update()
    return model


def make_seeds(model) -> list[bytes]:
    rng = np.random.default_rng(0)

    def img(h, w):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([128 + 90 * np.sin(xx / 5), 128 + 90 * np.cos(yy / 4), (xx + yy) % 256], 2)
        return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)

    seeds = [
        compress_image(model, ImageData(img(1, 1))),
        compress_image(model, ImageData(img(9, 17))),
        compress_image(model, ImageData(img(40, 64))),
        compress_image(model, ImageData(img(70, 130)), tile=64),  # 6 tiles
        compress_image(model, ImageData(img(20, 24), "gray")),
        compress_image(model, ImageData(img(16, 16), "rgba", 8, rng.integers(0, 256, (16, 16), dtype=np.uint8))),
        compress_image(model, ImageData(img(16, 16), "rgba", 8, np.full((16, 16), 255, np.uint8))),
        # metadata records (version 5): their contents are opaque to mlic, their framing is not
        compress_image(model, ImageData(img(16, 24), metadata={"icc": bytes(range(256)) * 2, "exif": b"Exif-ish" * 9,
                                                              "xmp": b"<x:xmpmeta/>"})),
    ]
    return seeds


def fix_crc(data: bytes) -> bytes:
    if len(data) < 4:
        return data
    body = data[:-4]
    return body + struct.pack(">I", zlib.crc32(body))


def _structural(rnd: random.Random, seed: bytes) -> tuple[bytes, str]:
    """Mutate the parsed file and write it again (a valid container with hostile content)."""
    f = unpack(seed)
    h = f.header
    choice = rnd.randrange(12)
    if choice == 0 and len(f.tiles) > 1:
        i, j = rnd.sample(range(len(f.tiles)), 2)
        f.tiles[i], f.tiles[j] = f.tiles[j], f.tiles[i]
        what = "swap tiles"
    elif choice == 1:
        t = rnd.choice(f.tiles)
        t.y, t.z = t.z, t.y
        what = "swap y and z streams"
    elif choice == 2:
        t = rnd.choice(f.tiles)
        t.y = t.y + t.y
        what = "duplicate y stream"
    elif choice == 3:
        t = rnd.choice(f.tiles)
        setattr(t, rnd.choice("yz"), b"")
        what = "empty stream"
    elif choice == 4:
        t = rnd.choice(f.tiles)
        t.y = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([1, 4, 8, len(t.y) or 1])))
        what = "random y stream"
    elif choice == 5:
        h.model = rnd.choice(["mlic", "mlic-plusplus", "x", "mlic-plus" * 20, "ml\x7fic"])
        what = f"model name {h.model!r}"
    elif choice == 6:
        h.weights_hash = bytes(rnd.getrandbits(8) for _ in range(8))
        what = "wrong weights hash"
    elif choice == 7:
        t = rnd.choice(f.tiles)
        t.checks = [rnd.getrandbits(16) for _ in t.checks] if rnd.random() < 0.7 else t.checks[:-1]
        what = "bad checksums"
    elif choice == 8:
        h.check_group = rnd.choice([1, 2, 3, 4, 5, 255])
        what = f"check group {h.check_group}"
    elif choice == 9:
        f.alpha = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 64)))
        what = "random alpha stream"
    elif choice == 10:
        f.alpha = zlib.compress(bytes(h.height * h.width * rnd.choice([0, 2, 100])))
        what = "alpha stream of the wrong size"
    else:
        t = rnd.choice(f.tiles)
        t.latent = (t.latent[0] + rnd.choice([-1, 1, 1000]), t.latent[1]) if t.latent[0] > 1 else (64, 64)
        what = "latent shape"
    try:
        return f.to_bytes(), what
    except (ValueError, struct.error, UnicodeEncodeError):
        return seed, what + " (not writable; seed instead)"


def _header_field(rnd: random.Random, seed: bytes) -> tuple[bytes, str]:
    """Overwrite one header field with an extreme value (CRC repaired); offsets of versions 4-5
    (docs/format.md), the metadata records' count and first tag and length of version 5."""
    n = seed[5]
    fields = {"height": (17 + n, ">I"), "width": (21 + n, ">I"), "tile": (28 + n, ">H"), "tiles": (31 + n, ">I"),
              "name length": (5, ">B"), "layout": (25 + n, ">B"), "depth": (26 + n, ">B"), "alpha": (27 + n, ">B"),
              "group": (30 + n, ">B"), "metric": (6 + n, ">B"), "version": (4, ">B"), "quality": (7 + n, ">H"),
              "metadata count": (35 + n, ">B"), "metadata tag": (36 + n, ">I"),
              "metadata length": (40 + n, ">I")}  # fmt: skip
    name = rnd.choice(sorted(fields))
    off, fmt = fields[name]
    size = struct.calcsize(fmt)
    value = rnd.choice(INTERESTING) % (1 << (8 * size))
    data = seed[:off] + struct.pack(fmt, value) + seed[off + size :]
    return fix_crc(data), f"{name} = {value}"


def mutate(rnd: random.Random, seeds: list[bytes]) -> tuple[bytes, str, int]:
    """One mutated input: (bytes, what was done, index of its seed)."""
    k = rnd.randrange(len(seeds))
    data, what = _mutate_one(rnd, seeds[k])
    return data, what, k


def _mutate_one(rnd: random.Random, seed: bytes) -> tuple[bytes, str]:
    kind = rnd.randrange(8)
    if kind == 0:
        return _structural(rnd, seed)
    if kind == 1:
        return _header_field(rnd, seed)
    data = bytearray(seed)
    if kind == 2:
        for _ in range(rnd.randint(1, 8)):
            data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        what = "bit flips"
    elif kind == 3:
        cut = rnd.randrange(len(data))
        data = data[:cut]
        what = f"truncated at {cut}"
    elif kind == 4:
        pos = rnd.randrange(len(data))
        data[pos:pos] = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 16)))
        what = "inserted bytes"
    elif kind == 5:
        pos = rnd.randrange(len(data))
        del data[pos : pos + rnd.randint(1, 16)]
        what = "deleted bytes"
    elif kind == 6:
        pos = rnd.randrange(max(1, len(data) - 4))
        value = rnd.choice(INTERESTING)
        data[pos : pos + 4] = struct.pack(">I", value % (1 << 32))
        what = f"4 bytes at {pos} = {value}"
    else:
        pos = rnd.randrange(len(data))
        data[pos:] = bytes(rnd.getrandbits(8) for _ in range(len(data) - pos))
        what = f"random tail from {pos}"
    if rnd.random() < 0.5:
        return fix_crc(bytes(data)), what + " (CRC repaired)"
    return bytes(data), what


class Lie(Exception):
    """A damaged file decoded without an error to an image other than its seed's."""


def target(data: bytes, model, reference=None) -> str:
    """Parse, describe and decode; returns the outcome ("decoded" or the MlicError class).

    With ``reference`` (the seed's decoded image), a decode that succeeds must give
    exactly that image: anything else is a lie and raises :class:`Lie`.
    """
    try:
        unpack(data)
        peek_header(data)
        out = decompress_bytes(data, model)
    except MlicError as exc:
        return type(exc).__name__
    h = peek_header(data)
    if out.rgb.shape != (h.height, h.width, 3):
        raise Lie("decoded image has the wrong size")
    if reference is not None:
        if out.rgb.shape != reference.rgb.shape or not np.array_equal(out.rgb, reference.rgb):
            raise Lie("decoded to a different image without an error")
        if out.alpha is not None and reference.alpha is not None and not np.array_equal(out.alpha, reference.alpha):
            raise Lie("decoded to a different alpha plane without an error")
    return "decoded"


def _alarm(signum, frame):
    raise Hang()


def run(inputs: int, seed: int, time_limit: float, model=None, verbose: bool = True) -> tuple[Counter, list[str], float]:
    """Fuzz ``inputs`` mutations; returns (outcome counts, escapes, slowest input in seconds)."""
    model = model or tiny_model()
    seeds = make_seeds(model)
    references = [decompress_bytes(s, model) for s in seeds]
    rnd = random.Random(seed)
    counts: Counter = Counter()
    escapes: list[str] = []
    slowest = 0.0
    old = signal.signal(signal.SIGALRM, _alarm)
    t_start = time.perf_counter()
    try:
        for i in range(inputs):
            data, what, k = mutate(rnd, seeds)
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, time_limit)
            try:
                counts[target(data, model, references[k])] += 1
            except Hang:
                counts["HANG"] += 1
                escapes.append(f"#{i} hang (> {time_limit} s): {what}")
            except Lie as exc:
                counts["LIE"] += 1
                escapes.append(f"#{i} lie: {exc} <- {what}")
            except Exception as exc:  # noqa: BLE001 - an escape is what we are looking for
                counts["ESCAPE"] += 1
                escapes.append(f"#{i} {type(exc).__name__}: {str(exc)[:120]} <- {what}")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            slowest = max(slowest, time.perf_counter() - t0)
            if verbose and (i + 1) % 5000 == 0:
                rate = (i + 1) / (time.perf_counter() - t_start)
                print(f"{i + 1:>8} inputs, {rate:.0f}/s, escapes {len(escapes)}", flush=True)
    finally:
        signal.signal(signal.SIGALRM, old)
    return counts, escapes, slowest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=5.0, help="seconds per input before it counts as a hang")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    counts, escapes, slowest = run(args.inputs, args.seed, args.time_limit)
    print(f"\n{args.inputs} inputs in {time.perf_counter() - t0:.0f} s, slowest {slowest:.2f} s")
    for outcome, n in counts.most_common():
        print(f"  {outcome:<22} {n}")
    print(f"escaped: {len(escapes)}")
    for e in escapes[:50]:
        print("  " + e)
    sys.exit(1 if escapes else 0)


if __name__ == "__main__":
    main()
