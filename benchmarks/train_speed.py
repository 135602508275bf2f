"""Training steps per second in fp32 and with bf16 transforms (g_a, g_s under autocast).

    python benchmarks/train_speed.py [--configs small,full] [--batch 8] [--crop 256] [--steps 5] [--threads 2]

One step = forward, rate-distortion loss, backward, clipping, Adam and the aux
step, on random crops. The probability path and the loss stay fp32 in both modes.
"""

from __future__ import annotations

import argparse
import time

import torch

from mlic.models import build
from mlic.models.loss import RateDistortionLoss

CONFIGS = {
    "tiny": dict(N=32, M=64, slices=4, channel_hidden=(48, 32), params_hidden=(96, 64, 48), lrp_hidden=(64, 48)),
    "small": dict(N=64, M=128, slices=4, channel_hidden=(96, 64), params_hidden=(160, 128, 96), lrp_hidden=(112, 64)),
    "medium": dict(N=96, M=192, slices=6, channel_hidden=(128, 96), params_hidden=(224, 160, 96), lrp_hidden=(160, 96)),
    "full": {},
}


def steps_per_second(name: str, overrides: dict, precision: str, batch: int, crop: int, steps: int) -> float:
    torch.manual_seed(0)
    model = build(name, **overrides).train()
    model.transform_precision = precision
    main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam(main, lr=1e-4)
    aux_opt = torch.optim.Adam([model.entropy_bottleneck.quantiles], lr=1e-3)
    loss_fn = RateDistortionLoss(0.013)
    x = torch.rand(batch, 3, crop, crop)

    def step():
        opt.zero_grad()
        aux_opt.zero_grad()
        loss_fn(model(x), x)["loss"].backward()
        torch.nn.utils.clip_grad_norm_(main, 1.0)
        opt.step()
        model.aux_loss().backward()
        aux_opt.step()

    step()  # warm-up (kernel selection)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mlic-plus")
    ap.add_argument("--configs", default="small,full", help=f"comma-separated from {', '.join(CONFIGS)}")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.model}, batch {args.batch}, crop {args.crop}, {args.threads} threads, {args.steps} timed steps")
    print(f"{'config':<8} {'params':>11} {'fp32 steps/s':>13} {'bf16 steps/s':>13} {'bf16 / fp32':>12}")
    for cfg in args.configs.split(","):
        n = sum(p.numel() for p in build(args.model, **CONFIGS[cfg]).parameters())
        fp32 = steps_per_second(args.model, CONFIGS[cfg], "fp32", args.batch, args.crop, args.steps)
        bf16 = steps_per_second(args.model, CONFIGS[cfg], "bf16", args.batch, args.crop, args.steps)
        print(f"{cfg:<8} {n:>11,} {fp32:>13.3f} {bf16:>13.3f} {bf16 / fp32:>11.2f}x", flush=True)


if __name__ == "__main__":
    main()
