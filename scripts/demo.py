"""`make demo`: compress the bundled sample photo with the default bundled model and decode it.

Prints bytes, bpp, PSNR and the path of the decoded PNG. Outputs go to out/demo/.
"""

from __future__ import annotations

import math
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from mlic import zoo
from mlic.cli.main import DEFAULT_MODEL
from mlic.codec import compress_image, decompress_bytes
from mlic.io.files import atomic_write
from mlic.io.image import read_image, write_png


def main() -> int:
    sample = Path(str(resources.files("mlic") / "samples" / "astronaut.png"))
    out = Path("out/demo")
    out.mkdir(parents=True, exist_ok=True)
    entry = zoo.find(DEFAULT_MODEL)
    model = zoo.load(entry)
    image = read_image(sample)
    t0 = time.perf_counter()
    quality = entry.high  # the highest bundled quality
    data = compress_image(model, image, quality=quality, metric=entry.metric)
    t_enc = time.perf_counter() - t0
    mlic_path = atomic_write(out / "astronaut.mlic", lambda f: f.write(data), force=True)
    t0 = time.perf_counter()
    decoded = decompress_bytes(mlic_path.read_bytes(), model)
    t_dec = time.perf_counter() - t0
    png = write_png(out / "astronaut.decoded.png", decoded, force=True)
    mse = np.mean((decoded.rgb.astype(np.float64) - image.rgb.astype(np.float64)) ** 2)
    psnr = 10 * math.log10(255**2 / mse) if mse > 0 else float("inf")
    bpp = 8 * len(data) / (image.width * image.height)
    lmbda = entry.lmbda if entry.lmbda is not None else model.rate_lambda(quality)
    print(f"model     {entry.model} quality {quality:g} of {entry.low:g}-{entry.high:g} ({entry.metric}, lambda {lmbda:g})")
    print(f"input     {sample} ({image.width}x{image.height})")
    print(f"bytes     {len(data):,} ({bpp:.4f} bpp; PNG input {sample.stat().st_size:,} bytes)")
    print(f"PSNR      {psnr:.2f} dB")
    print(f"time      encode {t_enc:.2f} s, decode {t_dec:.2f} s")
    print(f"decoded   {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
