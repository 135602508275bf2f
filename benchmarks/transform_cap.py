"""Where the quality of a model is capped: quantisation, the encoder g_a, or the decoder g_s.

    python benchmarks/transform_cap.py IMAGE_OR_FOLDER... [--weights W.safetensors]
        [--quality 2 4 6] [--search STEPS] [--crop 256] [--threads 2]

Per quality, averaged over the images (fp32 transforms, the model's own units):

- ``bpp`` / ``coded dB``: the eval forward (rounded latents, entropy estimate);
- ``g_a dB``: g_s of g_a's latent without quantisation (gain and inverse gain applied, no
  rounding): what the transforms alone reach;
- ``1/2 step`` / ``1/4 step``: g_a's latent rounded at half / a quarter of the coded step
  (what a finer quantiser would give, bits not counted);
- ``y share 50/90/99``: how many latent channels carry 50 / 90 / 99 % of the y bits, and
  ``dead``: channels with under 0.1 % of them.

With ``--search STEPS``: on a centred ``--crop`` square of each image, Adam (step 0.02) moves
g_a's latent of the highest quality for STEPS steps to minimise the MSE of g_s's output alone
(no rate term): ``g_s dB`` is what the decoder can reach with the best latent it is given,
against ``g_a dB`` on the same crop. A large gap means the encoder, not the decoder, caps the
quality. Results: docs/models.md, "Where the cap is".
"""

from __future__ import annotations

import argparse
import math
import sys

import torch

from health import image_files  # benchmarks/health.py, beside this script

from mlic import zoo
from mlic.io.image import read_image
from mlic.io.tensor import rgb_to_tensor
from mlic.io.weights import load_model


def psnr(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    return -10 * math.log10((x_hat.clamp(0, 1) - x).square().mean().item())


def channel_counts(share: torch.Tensor) -> tuple[int, int, int, int]:
    """Channels holding 50 / 90 / 99 % of the bits (largest first), and those under 0.1 %."""
    s = share.sort(descending=True).values.cumsum(0)
    return (*(int((s < f).sum()) + 1 for f in (0.5, 0.9, 0.99)), int((share < 0.001).sum()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", help="image files or folders (searched recursively)")
    ap.add_argument("--weights", help="a variable-rate .safetensors file (default: the bundled mlic-plus)")
    ap.add_argument("--quality", type=float, nargs="+", default=[2, 4, 6])
    ap.add_argument("--search", type=int, default=0, metavar="STEPS", help="also search g_s's reachable quality")
    ap.add_argument("--crop", type=int, default=256, help="side of the centred crop for --search")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    files = image_files(args.images)
    model = load_model(args.weights) if args.weights else zoo.load(zoo.find("mlic-plus"))
    if not model.config.variable_rate:
        raise SystemExit("a variable-rate model is needed (its gains give each quality's step)")
    model.eval().transform_precision = "fp32"
    for p in model.parameters():
        p.requires_grad_(False)
    images = [rgb_to_tensor(read_image(f).rgb) for f in files]
    with torch.no_grad():  # g_a does not depend on the quality: once per image
        latents = [model.analysis(x) for x in images]

    print("| quality | bpp | coded dB | g_a dB | 1/2 step dB | 1/4 step dB | y share 50/90/99 | dead |")
    print("|" + " --- |" * 8)
    for q in args.quality:
        rows, share = [], torch.zeros(model.config.M)
        with torch.no_grad():
            g = model.rate_gains(q)
            for x, y_model in zip(images, latents):
                h, w = x.shape[-2:]
                out = model.forward_latent(y_model, (h, w), "eval", q)  # what model(x, q) computes
                bits = {k: -torch.log2(v) for k, v in out["likelihoods"].items()}
                per_channel = bits["y"].sum(dim=(0, 2, 3))
                share += per_channel / per_channel.sum() / len(images)
                y = y_model * g.y
                dec = [model.synthesis(torch.round(y * k) / k * g.y_inv)[..., :h, :w] for k in (2, 4)]
                rows.append((sum(b.sum().item() for b in bits.values()) / (h * w), psnr(out["x_hat"], x),
                             psnr(model.synthesis(y * g.y_inv)[..., :h, :w], x), *(psnr(d, x) for d in dec)))  # fmt: skip
        avg = [sum(r[i] for r in rows) / len(rows) for i in range(5)]
        n50, n90, n99, dead = channel_counts(share)
        print(f"| {q:g} | {avg[0]:.4f} | {avg[1]:.2f} | {avg[2]:.2f} | {avg[3]:.2f} | {avg[4]:.2f} "
              f"| {n50}/{n90}/{n99} of {model.config.M} | {dead} |", flush=True)  # fmt: skip

    if args.search:
        q = max(args.quality)
        g = model.rate_gains(q)
        print(f"\n| image ({args.crop}x{args.crop} crop, quality {q:g}) | g_a dB | g_s dB after {args.search} steps |")
        print("| --- | --- | --- |")
        gaps = []
        for f, x in zip(files, images):
            h, w = x.shape[-2:]
            c = min(args.crop, h, w) // 64 * 64
            if c == 0:
                continue
            x = x[..., (h - c) // 2:(h - c) // 2 + c, (w - c) // 2:(w - c) // 2 + c].contiguous()
            with torch.no_grad():
                y0 = model.analysis(x) * g.y * g.y_inv
                start = psnr(model.synthesis(y0), x)
            y = y0.clone().requires_grad_(True)
            opt = torch.optim.Adam([y], lr=0.02)
            for _ in range(args.search):
                opt.zero_grad()
                (model.synthesis(y) - x).square().mean().backward()
                opt.step()
            with torch.no_grad():
                end = psnr(model.synthesis(y), x)
            gaps.append(end - start)
            print(f"| {f.name} | {start:.2f} | {end:.2f} |", flush=True)
        if gaps:
            print(f"\nmean gap g_s - g_a: {sum(gaps) / len(gaps):+.2f} dB over {len(gaps)} crops")
    return 0


if __name__ == "__main__":
    sys.exit(main())
