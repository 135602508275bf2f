"""Files made here decode exactly on a CPU with other kernels.

A decoder recomputes the encoder's probability model; if its floating-point results differ
(other SIMD kernels sum in another order), a predicted scale can fall on the other side of a
table boundary and the decoder desynchronises. With the float32 probability path (format
versions 1 and 2), 32 of 120 Kodak files encoded on an AVX-512 CPU failed to decode with AVX2
kernels (docs/determinism.md); version 3 runs that path in float64. This test encodes real
photos with every bundled model here and decodes them in a fresh process restricted to AVX2
kernels (how torch runs on a CPU without AVX-512; on such a CPU both sides use the same ones).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from conftest import kodak_rgb
from mlic import zoo
from mlic._torch_internals import AVX2_ONLY_ENV
from mlic.codec import compress_image
from mlic.io.image import ImageData, read_image


def test_bundled_models_files_decode_exactly_with_avx2_kernels(tmp_path):
    sample = read_image(Path(str(resources.files("mlic") / "samples" / "astronaut.png"))).rgb
    images = {"astronaut": sample, **{n: kodak_rgb(f"{n}.png") for n in ("kodim01", "kodim05", "kodim13", "kodim15", "kodim19", "kodim23")}}
    count = 0
    for e in zoo.entries():
        model = zoo.load(e)
        # five rates per file of weights: both ends and fractional qualities between the levels
        qualities = [e.low, *(e.low + (e.high - e.low) * f for f in (0.3, 0.55, 0.8)), e.high] if e.variable_rate else [e.low]
        for q in qualities:
            for name, rgb in images.items():
                (tmp_path / f"{e.file}-q{q:g}-{name}.mlic").write_bytes(compress_image(model, ImageData(rgb), quality=q, metric=e.metric))
                count += 1
    files = sorted(tmp_path.glob("*.mlic"))
    out = tmp_path / "decoded"
    out.mkdir()
    cmd = [sys.executable, "-m", "mlic.cli.main", "decompress", *map(str, files), "-o", str(out), "--precision", "fp32"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="2", **AVX2_ONLY_ENV))
    assert r.returncode == 0, r.stderr  # every symbol checksum of every file matched (no DesyncError)
    assert len(list(out.glob("*.png"))) == len(files) == count
