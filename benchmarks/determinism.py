"""Determinism matrix: encode in one process, decode in another, across thread counts.

    python benchmarks/determinism.py --kodak DIR [--images 24] [--weights W ...] [-o runs/determinism]

For every bundled model (or the given weights) and every encoder setting (threads 1 or 2,
with or without --verify), the Kodak images are compressed by one ``mlic compress`` process
and decompressed by fresh ``mlic decompress`` processes with 1 and with 2 threads. A cell
is "exact" when every file decodes without a desync error; the decoded PNGs of all cells
are also compared with each other (pixels: g_s runs in bf16 where the CPU has it, outside
the probability path), and the .mlic files of all encoder settings (bitstreams).
Prints the matrix as a Markdown table (docs/determinism.md records it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from itertools import product
from pathlib import Path

import numpy as np
from PIL import Image

from kodak_dir import add_kodak_argument, kodak_images

def cli(*args, threads: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.run([sys.executable, "-m", "mlic.cli.main", *map(str, args), "--threads", str(threads)],
                          capture_output=True, text=True, env=env)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_kodak_argument(ap)
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--weights", nargs="*", help="weights files instead of the bundled models")
    ap.add_argument("-o", "--out", default="runs/determinism")
    args = ap.parse_args()
    from mlic import zoo

    images = kodak_images(args.kodak, args.images)
    models = [(Path(w).stem, ["--weights", w]) for w in args.weights] if args.weights else \
        [(f"{e.model} q{q:g}", ["--model", e.model, "--quality", q]) for q, e in zoo.points(metric=None, step=0.75)]  # fmt: skip
    out = Path(args.out)
    rows = []
    for label, select in models:
        decoded: dict[tuple, list[str]] = {}
        streams: dict[tuple, list[str]] = {}
        for enc_threads, verify in product((1, 2), (False, True)):
            enc_dir = out / label.replace(" ", "-") / f"enc{enc_threads}{'v' if verify else ''}"
            enc_dir.mkdir(parents=True, exist_ok=True)
            proc = cli("compress", *images, "-o", enc_dir, "--force", *select, *(["--verify"] if verify else []), threads=enc_threads)
            if proc.returncode:
                rows.append((label, enc_threads, verify, "-", f"encode failed: {proc.stderr.strip()[-200:]}"))
                continue
            files = sorted(enc_dir.glob("*.mlic"))
            streams[(enc_threads, verify)] = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
            for dec_threads in (1, 2):
                dec_dir = enc_dir / f"dec{dec_threads}"
                dec_dir.mkdir(exist_ok=True)
                extra = ["--weights", select[1]] if select[0] == "--weights" else []
                proc = cli("decompress", *files, "-o", dec_dir, "--force", *extra, threads=dec_threads)
                desync = proc.stderr.count("desynchronised")
                ok = proc.returncode == 0
                status = "exact" if ok else (f"desync error in {desync} files" if desync else f"failed: {proc.stderr.strip()[-200:]}")
                rows.append((label, enc_threads, verify, dec_threads, status))
                if ok:
                    decoded[(enc_threads, verify, dec_threads)] = [
                        hashlib.sha256(np.asarray(Image.open(p)).tobytes()).hexdigest() for p in sorted(dec_dir.glob("*.png"))
                    ]
        same_pixels = len({tuple(v) for v in decoded.values()}) == 1 if decoded else False
        same_streams = len({tuple(v) for v in streams.values()}) == 1 if streams else False
        rows.append((label, "all", "", "", f"decoded PNGs identical across cells: {'yes' if same_pixels else 'no'}; "
                     f".mlic files identical across encoder settings: {'yes' if same_streams else 'no'}"))  # fmt: skip
    print(f"Kodak, {len(images)} images; encode and decode in separate processes\n")
    print("| model | encoder threads | --verify | decoder threads | result |")
    print("| --- | --- | --- | --- | --- |")
    for label, et, v, dt, status in rows:
        print(f"| {label} | {et} | {'yes' if v is True else 'no' if v is False else ''} | {dt} | {status} |")


if __name__ == "__main__":
    main()
