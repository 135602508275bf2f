"""Peak memory of ``compress`` (and optionally ``decompress``) at large sizes.

    python benchmarks/memory.py [--model mlic-plus] [--sizes 768x512,2048x2048,3840x2160] [--threads 2] [--decompress]
    python benchmarks/memory.py --codec [--sizes 1x1,1x5000,17x9,4095x3,7680x4320,10000x10000] [--tile 2048]

Each size runs in a fresh subprocess; the figure is the process's peak resident
set size (ru_maxrss), which includes the model's weights (reported separately).
Default mode: one untiled ``model.compress`` with random default-size weights
(target of issue 3: MLIC+ compress below 8 GB at 3840x2160). ``--codec``: the whole
codec path with the bundled default model: a synthetic photo-like RGB image of that
size goes through ``compress_image`` (tiles of --tile pixels) into .mlic bytes and
back through ``decompress_bytes``, checked for size; the input and output images
(3 bytes a pixel each) are part of the peak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time, torch
from mlic.models import build
name, w, h, threads, decompress = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
torch.set_num_threads(threads)
model = build(name).eval(); model.update()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
x = torch.rand(1, 3, h, w)
t0 = time.perf_counter(); enc = model.compress(x); t_enc = time.perf_counter() - t0
peak_enc = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t_dec = None
if decompress:
    del x
    t0 = time.perf_counter(); dec = model.decompress(enc["strings"], enc["shape"], enc["image_size"]); t_dec = time.perf_counter() - t0
    assert torch.equal(dec["y_hat"], enc["y_hat"])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kb": base, "peak_enc_kb": peak_enc, "peak_kb": peak, "t_enc": t_enc, "t_dec": t_dec,
                  "bytes": sum(len(s) for ss in enc["strings"] for s in ss)}))
"""


CODEC_CHILD = r"""
import json, resource, sys, time, numpy as np, torch
from mlic import zoo
from mlic.codec import compress_image, decompress_bytes
from mlic.io.image import ImageData
w, h, threads, tile = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
entry = zoo.find("mlic-plus")
model = zoo.load(entry); model.update()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = np.arange(h, dtype=np.float32)[:, None]
cols = np.arange(w, dtype=np.float32)[None, :]
rgb = np.empty((h, w, 3), np.uint8)  # smooth gradients and stripes, filled a channel at a time
for c in range(3):
    rgb[..., c] = (127 + 100 * np.sin(cols / (9 + 4 * c) + c) * np.cos(rows / (13 + 3 * c))).astype(np.uint8)
t0 = time.perf_counter(); data = compress_image(model, ImageData(rgb), quality=entry.high, tile=tile); t_enc = time.perf_counter() - t0
peak_enc = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter(); out = decompress_bytes(data, model); t_dec = time.perf_counter() - t0
assert out.rgb.shape == (h, w, 3)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kb": base, "peak_enc_kb": peak_enc, "peak_kb": peak, "t_enc": t_enc, "t_dec": t_dec, "bytes": len(data)}))
"""


def codec_mode(args) -> None:
    sizes = args.sizes if args.sizes != DEFAULT_SIZES else "1x1,1x5000,17x9,4095x3,7680x4320,10000x10000"
    print(f"bundled mlic-plus (highest quality) through the codec (tiles of {args.tile}), {args.threads} threads, "
          "peak RSS of a fresh process")  # fmt: skip
    print(f"{'size':>12} {'pixels':>12} {'weights GB':>11} {'compress peak GB':>17} {'total peak GB':>14} {'bytes':>10} {'enc s':>7} {'dec s':>7}")
    for size in sizes.split(","):
        w, h = (int(v) for v in size.lower().split("x"))
        proc = subprocess.run([sys.executable, "-c", CODEC_CHILD, str(w), str(h), str(args.threads), str(args.tile)],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode:
            print(f"{size:>12} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        gb = lambda kb: kb / 1024**2  # noqa: E731
        print(f"{size:>12} {w * h:>12,} {gb(r['base_kb']):>11.2f} {gb(r['peak_enc_kb']):>17.2f} {gb(r['peak_kb']):>14.2f} "
              f"{r['bytes']:>10,} {r['t_enc']:>7.1f} {r['t_dec']:>7.1f}", flush=True)  # fmt: skip


DEFAULT_SIZES = "768x512,2048x2048,3840x2160"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mlic-plus")
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated WIDTHxHEIGHT")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--decompress", action="store_true", help="also decompress and check exactness")
    ap.add_argument("--codec", action="store_true", help="the whole codec with the bundled model (tiles)")
    ap.add_argument("--tile", type=int, default=2048, help="tile side with --codec")
    args = ap.parse_args()
    if args.codec:
        codec_mode(args)
        return
    print(f"{args.model}, {args.threads} threads, peak RSS of a fresh process (weights included)")
    print(f"{'size':>10} {'weights GB':>11} {'compress peak GB':>17} {'compress s':>11}" + (f" {'total peak GB':>14} {'decompress s':>13}" if args.decompress else ""))
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.lower().split("x"))
        t0 = time.time()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, args.model, str(w), str(h), str(args.threads), "1" if args.decompress else "0"],
            capture_output=True, text=True,
        )
        if proc.returncode:
            print(f"{size:>10} failed after {time.time() - t0:.0f} s: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        gb = lambda kb: kb / 1024**2  # noqa: E731
        line = f"{size:>10} {gb(r['base_kb']):>11.2f} {gb(r['peak_enc_kb']):>17.2f} {r['t_enc']:>11.1f}"
        if args.decompress:
            line += f" {gb(r['peak_kb']):>14.2f} {r['t_dec']:>13.1f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
