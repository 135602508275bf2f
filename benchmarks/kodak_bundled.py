"""Bundled models on Kodak with real bitstreams, against the published JPEG and WebP anchors.

    python benchmarks/kodak_bundled.py [--weights W.safetensors ...] [--images 24] [--threads 2] [-o results.json]

For every bundled model (or the given weights): compress and decompress each
Kodak image through the .mlic container, then report mean bpp (whole file),
PSNR-RGB and MS-SSIM on the 8-bit output, and encode/decode times. Against the
anchors in ../shared/data/anchors/kodak: the Bjontegaard rate delta (PCHIP)
when there are at least two rate points, else the rate difference of the single
point at equal PSNR.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mlic import zoo
from mlic.codec import compress_image, decompress_bytes
from mlic.eval import bd_rate, ms_ssim_rgb, psnr_rgb, rate_saving_at
from mlic.io.image import read_image
from mlic.io.weights import load_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def evaluate(model, images: list[Path]) -> dict:
    bpp, psnr, msssim, t_enc, t_dec = [], [], [], [], []
    for path in images:
        img = read_image(path)
        t0 = time.perf_counter()
        data = compress_image(model, img)
        t_enc.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out = decompress_bytes(data, model)
        t_dec.append(time.perf_counter() - t0)
        bpp.append(8 * len(data) / (img.width * img.height))
        psnr.append(psnr_rgb(img.rgb, out.rgb))
        msssim.append(ms_ssim_rgb(img.rgb, out.rgb))
    return {k: float(np.mean(v)) for k, v in
            dict(bpp=bpp, psnr=psnr, msssim=msssim, t_enc=t_enc, t_dec=t_dec).items()}  # fmt: skip


def anchor(name: str) -> tuple[np.ndarray, np.ndarray]:
    res = json.loads((SHARED / "anchors" / "kodak" / name).read_text())["results"]
    return np.array(res["bpp"]), np.array(res["psnr-rgb"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", nargs="*", help="weights files instead of the bundled models")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--output", help="write results (CompressAI schema) to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = sorted((SHARED / "kodak").glob("kodim*.png"))[: args.images]
    models = [(Path(w).name, load_model(w)) for w in args.weights] if args.weights else \
        [(f"{e.model} q{e.quality}", zoo.load(e)) for e in zoo.entries()]  # fmt: skip
    rows = []
    print(f"Kodak, {len(images)} images, real bitstreams, {args.threads} threads")
    print(f"{'model':<22} {'bpp':>7} {'PSNR dB':>8} {'MS-SSIM':>8} {'enc s':>6} {'dec s':>6}")
    for label, model in models:
        r = evaluate(model, images)
        rows.append((label, r))
        print(f"{label:<22} {r['bpp']:>7.4f} {r['psnr']:>8.3f} {r['msssim']:>8.4f} {r['t_enc']:>6.2f} {r['t_dec']:>6.2f}", flush=True)
    bpp = np.array([r["bpp"] for _, r in rows])
    psnr = np.array([r["psnr"] for _, r in rows])
    for name in ("jpeg.json", "webp.json"):
        ab, ap_ = anchor(name)
        if len(rows) >= 2:
            try:
                print(f"BD-rate vs {name[:-5]}: {bd_rate(ab, ap_, bpp, psnr):+.2f} %")
            except ValueError as exc:
                print(f"BD-rate vs {name[:-5]}: not defined ({exc}; its PSNR range is {ap_.min():.2f}-{ap_.max():.2f} dB)")
        elif rows:
            if ap_.min() <= psnr[0] <= ap_.max():
                saving = rate_saving_at(ab, ap_, bpp[0], psnr[0])
                print(f"rate vs {name[:-5]} at {psnr[0]:.2f} dB: {saving:+.2f} % (single point)")
            else:
                print(f"{name[:-5]}: {psnr[0]:.2f} dB is outside its published PSNR range {ap_.min():.2f}-{ap_.max():.2f} dB")
    if args.output:
        out = {"name": "mlic-bundled", "description": "bundled models, real bitstreams, Kodak",
               "results": {"bpp": bpp.tolist(), "psnr-rgb": psnr.tolist(),
                           "ms-ssim-rgb": [r["msssim"] for _, r in rows],
                           "encoding_time": [r["t_enc"] for _, r in rows],
                           "decoding_time": [r["t_dec"] for _, r in rows]},
               "bpp_kind": "bitstream", "models": [label for label, _ in rows]}  # fmt: skip
        Path(args.output).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
