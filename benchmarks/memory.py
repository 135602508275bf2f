"""Peak memory of ``compress`` (and optionally ``decompress``) at large sizes, random weights.

    python benchmarks/memory.py [--model mlic-plus] [--sizes 768x512,2048x2048,3840x2160] [--threads 2] [--decompress]

Each size runs in a fresh subprocess; the figure is the process's peak resident
set size (ru_maxrss), which includes the model's weights (reported separately).
Target (issue 3): MLIC+ compress below 8 GB at 3840x2160.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mlic-plus")
    ap.add_argument("--sizes", default="768x512,2048x2048,3840x2160", help="comma-separated WIDTHxHEIGHT")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--decompress", action="store_true", help="also decompress and check exactness")
    args = ap.parse_args()
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
