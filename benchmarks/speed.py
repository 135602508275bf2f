"""Forward, compress and decompress times of the default models (random weights).

    python benchmarks/speed.py [--size 768x512] [--threads 2] [--repeats 3] [--models mlic,mlic-plus,mlic-plusplus]

Prints the best of ``repeats`` runs per stage, checks that decompression
reproduces the encoder's latent exactly, and, for bf16 transforms, the PSNR of
the bf16 decode measured against the fp32 decode of the same stream (how much
the faster g_s changes the picture). Anchor (same machine kind): the
official MLIC++ code compresses a 768x512 image in 2.8 s and decompresses in 3.2 s.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from mlic.models import build


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="768x512", help="WIDTHxHEIGHT")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="mlic,mlic-plus,mlic-plusplus")
    ap.add_argument("--precisions", default="fp32,bf16", help="transform precisions to time (g_a, g_s only)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.lower().split("x"))
    torch.manual_seed(0)
    x = torch.rand(1, 3, h, w)
    print(f"{w}x{h}, {args.threads} threads, best of {args.repeats}")
    print(f"{'model':<15} {'g_a/g_s':>7} {'forward s':>10} {'compress s':>11} {'decompress s':>13} {'bytes':>8} {'exact':>6} {'x_hat dB vs fp32':>17}")
    for name in args.models.split(","):
        model = build(name).eval()
        model.update()
        reference = None
        for precision in args.precisions.split(","):
            model.transform_precision = precision
            with torch.no_grad():
                t_fwd, _ = best_of(lambda: model(x), args.repeats)
            t_enc, enc = best_of(lambda: model.compress(x), args.repeats)
            t_dec, dec = best_of(lambda: model.decompress(enc["strings"], enc["shape"], enc["image_size"]), args.repeats)
            nbytes = sum(len(s) for strings in enc["strings"] for s in strings)
            exact = torch.equal(dec["y_hat"], enc["y_hat"])
            # how far this precision's decoded image is from the fp32 decode of the same stream
            model.transform_precision = "fp32"
            ref = model.decompress(enc["strings"], enc["shape"], enc["image_size"])["x_hat"].clamp(0, 1)
            mse = torch.mean((dec["x_hat"].clamp(0, 1) - ref) ** 2).item()
            gap = "exact" if mse == 0 else f"{10 * math.log10(1 / mse):.1f}"
            print(f"{name:<15} {precision:>7} {t_fwd:>10.2f} {t_enc:>11.2f} {t_dec:>13.2f} {nbytes:>8} {str(exact):>6} {gap:>17}")
        del model


if __name__ == "__main__":
    main()
