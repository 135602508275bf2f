"""Forward, compress and decompress times of the default models (random weights).

    python benchmarks/speed.py [--size 768x512] [--threads 2] [--repeats 3] [--models mlic,mlic-plus,mlic-plusplus]
                               [--probability float64,float32]
    python benchmarks/speed.py --breakdown [--sizes 768x512,1920x1080] [--thread-counts 1,2] [--models ...]

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


class StageTimer:
    """Wall time per stage of one compress / decompress call, by wrapping the model's pieces.

    Stages: g_a, h_a, h_s, g_s (the transforms), "coding" (every entropy encoder and decoder
    call, z and y), and "entropy model" (the slice loop minus its coding: contexts,
    entropy parameters, LRP, table indexes).
    """

    def __init__(self, model) -> None:
        import mlic.models.mlic as mlic_module
        from mlic.coding import ans

        self.times: dict[str, float] = {}
        self.state = {"in_loop": False}  # inside run_slices: coding there is not "entropy model"
        self._undo = []
        wrap = self._wrap
        wrap(model, "analysis", "g_a")
        wrap(model, "synthesis", "g_s")
        wrap(model.h_a, "forward", "h_a")
        wrap(model.h_s, "forward", "h_s")
        wrap(ans.SymbolEncoder, "encode", "coding")
        wrap(ans.SymbolDecoder, "decode", "coding")
        wrap(ans.SymbolEncoder, "flush", "coding")
        wrap(mlic_module, "run_slices", "slice loop")

    def _wrap(self, owner, attr: str, stage: str) -> None:
        original = getattr(owner, attr)
        times = self.times
        state = self.state

        def timed(*a, **k):
            t0 = time.perf_counter()
            if stage == "slice loop":
                state["in_loop"] = True
            try:
                return original(*a, **k)
            finally:
                dt = time.perf_counter() - t0
                times[stage] = times.get(stage, 0.0) + dt
                if stage == "slice loop":
                    state["in_loop"] = False
                elif stage == "coding" and state["in_loop"]:
                    times["coding in loop"] = times.get("coding in loop", 0.0) + dt

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)


def stage_flops(model, x: torch.Tensor) -> dict[str, float]:
    """FLOPs of each network stage for one image (torch's FlopCounterMode; convs, matmuls, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    from mlic.models.slices import QuantizeStep, run_slices

    def count(fn) -> float:
        with FlopCounterMode(display=False) as fc:
            fn()
        return float(fc.get_total_flops())

    with torch.no_grad():
        y = model.analysis(x)
        z = model.h_a(y)
        z_hat = torch.round(z)
        hyper = model.h_s(z_hat)
        out = {
            "g_a": count(lambda: model.analysis(x)),
            "h_a": count(lambda: model.h_a(y)),
            "h_s": count(lambda: model.h_s(z_hat)),
            "entropy model": count(lambda: run_slices(model, hyper, QuantizeStep(y, model.slice_channels, "round"))),
            "g_s": count(lambda: model.synthesis(y)),
        }
    return out


def machine_peak(threads: int) -> dict[str, float]:
    """This machine's practical compute limit in fp32 and bf16 (FLOP/s): the best of a large
    matmul and a 3x3 convolution shaped like the transforms' (192 channels, channels-last),
    each timed best of 5. (The convolution beats the matmul here, so both are tried.)"""
    import torch.nn.functional as F

    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(2048, 2048, dtype=dtype)
        b = torch.randn(2048, 2048, dtype=dtype)
        t_mm, _ = best_of(lambda: a @ b, 5)
        x = torch.randn(1, 192, 128, 192, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(192, 192, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
        t_conv, _ = best_of(lambda: F.conv2d(x, w, padding=1), 5)
        out[str(dtype).split(".")[-1]] = max(2 * 2048**3 / t_mm, 2 * 9 * 192 * 192 * 128 * 192 / t_conv)
    return out


def flop_bound(flops: dict[str, float], peak: dict[str, float], transform_precision: str) -> dict[str, float]:
    """Least time this machine could take for the same FLOPs: every stage at the best measured
    throughput of its precision (:func:`machine_peak`): g_a / g_s in bf16 when the model runs
    them so, the probability path always fp32. Elementwise work, attention softmax and entropy
    coding count as free."""
    bf16 = transform_precision != "fp32" and peak.get("bfloat16", 0) > peak["float32"]
    t_peak = peak["bfloat16"] if bf16 else peak["float32"]
    fp32 = lambda *stages: sum(flops[s] for s in stages) / peak["float32"]  # noqa: E731
    return {
        "compress": flops["g_a"] / t_peak + fp32("h_a", "h_s", "entropy model"),
        "decompress": fp32("h_s", "entropy model") + flops["g_s"] / t_peak,
    }


def breakdown(args) -> None:
    stages = ("g_a", "h_a", "h_s", "entropy model", "coding", "g_s", "other")
    prob = args.probability.split(",")[0]
    dtype = getattr(torch, prob)
    if prob != "float32":
        print("note: the FLOP bound below counts the probability path at the float32 rate; "
              f"it runs in {prob} here (use --probability float32 for the float32 path)")  # fmt: skip
    for threads in (int(t) for t in args.thread_counts.split(",")):
        torch.set_num_threads(threads)
        peak = machine_peak(threads)
        print(f"\n{threads} thread(s); best measured matmul/conv throughput here: fp32 {peak['float32'] / 1e9:.0f} GFLOP/s, "
              f"bf16 {peak['bfloat16'] / 1e9:.0f} GFLOP/s")  # fmt: skip
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.lower().split("x"))
            torch.manual_seed(0)
            x = torch.rand(1, 3, h, w)
            for name in args.models.split(","):
                model = build(name).eval()
                model.update()
                flops = stage_flops(model, x)
                with torch.no_grad():
                    t_fwd, _ = best_of(lambda: model(x), args.repeats)
                rows = {}
                for op in ("compress", "decompress"):
                    best = None
                    for _ in range(args.repeats):
                        timer = StageTimer(model)
                        try:
                            t0 = time.perf_counter()
                            if op == "compress":
                                enc = model.compress(x, probability_dtype=dtype)
                            else:
                                model.decompress(enc["strings"], enc["shape"], enc["image_size"], probability_dtype=dtype)
                            total = time.perf_counter() - t0
                        finally:
                            timer.restore()
                        if best is None or total < best[0]:
                            best = (total, dict(timer.times))
                    total, times = best
                    loop = times.pop("slice loop", 0.0)
                    split = {k: times.get(k, 0.0) for k in ("g_a", "h_a", "h_s", "g_s")}
                    split["coding"] = times.get("coding", 0.0)
                    split["entropy model"] = max(0.0, loop - times.get("coding in loop", 0.0))
                    split["other"] = max(0.0, total - sum(split.values()))
                    rows[op] = (total, split)
                print(f"\n{name} {w}x{h}, {threads} thread(s): forward {t_fwd:.2f} s, compress {rows['compress'][0]:.2f} s, "
                      f"decompress {rows['decompress'][0]:.2f} s (best of {args.repeats}; g_a/g_s {model.transform_precision}, "
                      f"probability path {prob})")  # fmt: skip
                print(f"  {'stage':<14} {'GFLOP':>8} {'compress s':>11} {'GFLOP/s':>8} {'decompress s':>13} {'GFLOP/s':>8}")
                for st in stages:
                    f = flops.get(st)
                    te, td = rows["compress"][1][st], rows["decompress"][1][st]
                    rate = lambda t: f"{f / t / 1e9:>8.0f}" if f and t > 1e-4 else f"{'':>8}"  # noqa: E731
                    print(f"  {st:<14} {'' if f is None else f'{f / 1e9:8.1f}':>8} {te:>11.3f} {rate(te)} {td:>13.3f} {rate(td)}")
                bound = flop_bound(flops, peak, model.transform_precision)
                print(f"  FLOP bound (every stage at that throughput in its precision): "
                      f"compress >= {bound['compress']:.2f} s, decompress >= {bound['decompress']:.2f} s")  # fmt: skip
                del model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="768x512", help="WIDTHxHEIGHT")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="mlic,mlic-plus,mlic-plusplus")
    ap.add_argument("--precisions", default="fp32,bf16", help="transform precisions to time (g_a, g_s only)")
    ap.add_argument("--probability", default="float64",
                    help="probability-path dtypes to time: float64 (format version 3, the default) and/or float32 (versions 1-2)")
    ap.add_argument("--breakdown", action="store_true", help="per-stage times, FLOPs and FLOP/s")
    ap.add_argument("--sizes", default="768x512,1920x1080", help="with --breakdown: WIDTHxHEIGHT list")
    ap.add_argument("--thread-counts", default="1,2", help="with --breakdown: thread counts")
    args = ap.parse_args()
    if args.breakdown:
        breakdown(args)
        return
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.lower().split("x"))
    torch.manual_seed(0)
    x = torch.rand(1, 3, h, w)
    print(f"{w}x{h}, {args.threads} threads, best of {args.repeats}")
    print(f"{'model':<15} {'g_a/g_s':>7} {'prob.':>7} {'forward s':>10} {'compress s':>11} {'decompress s':>13} {'bytes':>8} {'exact':>6} {'x_hat dB vs fp32':>17}")
    for name in args.models.split(","):
        model = build(name).eval()
        model.update()
        for precision in args.precisions.split(","):
            for prob in args.probability.split(","):
                dtype = getattr(torch, prob)
                model.transform_precision = precision
                with torch.no_grad():
                    t_fwd, _ = best_of(lambda: model(x), args.repeats)
                t_enc, enc = best_of(lambda: model.compress(x, probability_dtype=dtype), args.repeats)
                t_dec, dec = best_of(lambda: model.decompress(enc["strings"], enc["shape"], enc["image_size"],
                                                              probability_dtype=dtype), args.repeats)  # fmt: skip
                nbytes = sum(len(s) for strings in enc["strings"] for s in strings)
                exact = torch.equal(dec["y_hat"], enc["y_hat"])
                # how far this precision's decoded image is from the fp32 decode of the same stream
                model.transform_precision = "fp32"
                ref = model.decompress(enc["strings"], enc["shape"], enc["image_size"], probability_dtype=dtype)["x_hat"].clamp(0, 1)
                mse = torch.mean((dec["x_hat"].clamp(0, 1) - ref) ** 2).item()
                gap = "exact" if mse == 0 else f"{10 * math.log10(1 / mse):.1f}"
                print(f"{name:<15} {precision:>7} {prob[5:]:>7} {t_fwd:>10.2f} {t_enc:>11.2f} {t_dec:>13.2f} {nbytes:>8} {str(exact):>6} {gap:>17}")
        del model


if __name__ == "__main__":
    main()
