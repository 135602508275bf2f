"""Compress and decompress times, with the FLOP bound of each, on this CPU and on an AVX2-only one.

    python benchmarks/speed.py [--size 768x512 | --image PHOTO] [--threads 2] [--repeats 3]
                               [--models bundled,mlic,mlic-plus,mlic-plusplus] [--cpus native,avx2]
                               [--precisions fp32,bf16] [--probability float64,float32]
                               [--inference-path fast,plain]
    python benchmarks/speed.py --breakdown [--sizes 768x512,1920x1080] [--thread-counts 1,2] [--models ...]
                               [--cpus native,avx2]
    python benchmarks/speed.py --transforms --inference-path fast,plain [--models bundled] [--repeats 6]

One run measures every model at every transform precision on each CPU kind: ``native`` is
this CPU; ``avx2`` is the same machine emulating a CPU with AVX2 only
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``, see
``mlic._torch_internals.AVX2_ONLY_ENV``; bf16 would be emulated there, so it is timed in fp32
only, as ``--precision auto`` runs it). Each kind runs in its own process (the ISA is fixed
when torch loads), one after the other. ``bundled`` is the bundled MLIC+ at its
highest quality; the others are default-size models with random weights. Prints the best of
``repeats`` runs, the FLOP bound (every stage at this CPU kind's measured matmul/conv
throughput in its precision) and the ratio to it, checks that decompression reproduces the
encoder's latent exactly and, for bf16 transforms, the PSNR of the bf16 decode against the
fp32 decode of the same stream. ``--inference-path fast,plain`` times each row twice, with
and without the transforms' inference path (in-place blocks and channels-last weight copies,
``mlic.nn.inference``), back to back; ``--transforms`` times g_a and g_s alone with the paths
interleaved in every repeat (finer than whole calls). ``--breakdown`` splits one model's time by stage, in a
child process per CPU kind as well. Anchor (AMD EPYC, AVX512-BF16): the official MLIC++ code
compresses a 768x512 image in 2.8 s and decompresses in 3.2 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from itertools import product

import torch

from mlic._torch_internals import AVX2_ONLY_ENV
from mlic.models import build
from mlic.nn import inference


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
    """FLOPs of each network stage for one image (torch's FlopCounterMode; convs, matmuls, attention).
    A variable-rate model's gains add elementwise work only, so they are left out."""
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
    """This machine's practical compute limit in fp32, float64 (the probability path of format
    version 3) and bf16 (FLOP/s; bf16 0 where it is only emulated): the best of a large
    matmul and a 3x3 convolution shaped like the transforms' (192 channels, channels-last),
    each timed best of 5. (The convolution beats the matmul here, so both are tried.)"""
    import torch.nn.functional as F

    from mlic.models.mlic import native_bf16

    out = {"bfloat16": 0.0}  # without native bf16 kernels only fp32 counts (bf16 is emulated, far slower)
    for dtype in (torch.float32, torch.float64, torch.bfloat16) if native_bf16() else (torch.float32, torch.float64):
        a = torch.randn(2048, 2048, dtype=dtype)
        b = torch.randn(2048, 2048, dtype=dtype)
        t_mm, _ = best_of(lambda: a @ b, 5)
        x = torch.randn(1, 192, 128, 192, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(192, 192, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
        t_conv, _ = best_of(lambda: F.conv2d(x, w, padding=1), 5)
        out[str(dtype).split(".")[-1]] = max(2 * 2048**3 / t_mm, 2 * 9 * 192 * 192 * 128 * 192 / t_conv)
    return out


def flop_bound(flops: dict[str, float], peak: dict[str, float], transform_precision: str,
               probability: str = "float32") -> dict[str, float]:
    """Least time this machine could take for the same FLOPs: every stage at the best measured
    throughput of its precision (:func:`machine_peak`): g_a / g_s in bf16 when the model runs
    them so, h_a in fp32, h_s and the entropy model in ``probability`` (float64 in format
    version 3, float32 in versions 1-2). Elementwise work, attention softmax and entropy
    coding count as free."""
    bf16 = transform_precision != "fp32" and peak.get("bfloat16", 0) > peak["float32"]
    t_peak = peak["bfloat16"] if bf16 else peak["float32"]
    p_peak = peak.get(probability, peak["float32"])
    prob = lambda *stages: sum(flops[s] for s in stages) / p_peak  # noqa: E731
    return {
        "compress": flops["g_a"] / t_peak + flops["h_a"] / peak["float32"] + prob("h_s", "entropy model"),
        "decompress": prob("h_s", "entropy model") + flops["g_s"] / t_peak,
    }


def breakdown(args) -> None:
    """Per-stage times on this process's CPU kind, g_a / g_s in the first of ``--precisions``
    that runs natively here (fp32 where bf16 would be emulated)."""
    from mlic.models.mlic import native_bf16

    stages = ("g_a", "h_a", "h_s", "entropy model", "coding", "g_s", "other")
    prob = args.probability.split(",")[0]
    precision = next((p for p in args.precisions.split(",") if p != "bf16" or native_bf16()), "fp32")
    dtype = getattr(torch, prob)
    for threads in (int(t) for t in args.thread_counts.split(",")):
        torch.set_num_threads(threads)
        peak = machine_peak(threads)
        print(f"\n{threads} thread(s); best measured matmul/conv throughput here: fp32 {peak['float32'] / 1e9:.0f}, "
              f"float64 {peak['float64'] / 1e9:.0f}, bf16 {peak['bfloat16'] / 1e9:.0f} GFLOP/s")  # fmt: skip
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.lower().split("x"))
            torch.manual_seed(0)
            x = torch.rand(1, 3, h, w)
            for name in args.models.split(","):
                model, quality = load_model(name)
                model.transform_precision = precision
                flops = stage_flops(model, x)
                with torch.no_grad():
                    t_fwd, _ = best_of(lambda: model(x, quality=quality), args.repeats)
                rows = {}
                for op in ("compress", "decompress"):
                    best = None
                    for _ in range(args.repeats):
                        timer = StageTimer(model)
                        try:
                            t0 = time.perf_counter()
                            if op == "compress":
                                enc = model.compress(x, probability_dtype=dtype, quality=quality)
                            else:
                                model.decompress(enc["strings"], enc["shape"], enc["image_size"], probability_dtype=dtype,
                                                 quality=quality)  # fmt: skip
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
                bound = flop_bound(flops, peak, model.transform_precision, prob)
                print(f"  FLOP bound (every stage at that throughput in its precision): "
                      f"compress >= {bound['compress']:.2f} s, decompress >= {bound['decompress']:.2f} s")  # fmt: skip


def transforms(args) -> None:
    """g_a and g_s alone, fp32, each ``--inference-path`` in turn within every repeat (so that a
    busy moment hits all paths alike); best per path, and whether every path gave the same bits."""
    torch.set_num_threads(args.threads)
    x = input_image(args)
    paths = args.inference_path.split(",")
    for name in args.models.split(","):
        model, quality = load_model(name)
        model.transform_precision = "fp32"
        best: dict[str, list[float]] = {p: [math.inf, math.inf] for p in paths}
        outs: dict[str, tuple] = {}
        with torch.no_grad():
            for _ in range(args.repeats):
                for path in paths:
                    inference.enabled = path == "fast"
                    t0 = time.perf_counter()
                    y = model.analysis(x)
                    t1 = time.perf_counter()
                    x_hat = model.synthesis(torch.round(y))
                    t2 = time.perf_counter()
                    best[path] = [min(best[path][0], t1 - t0), min(best[path][1], t2 - t1)]
                    outs[path] = (y, x_hat)
        inference.enabled = True
        first = outs[paths[0]]
        same = all(torch.equal(o[0], first[0]) and torch.equal(o[1], first[1]) for o in outs.values())
        for path in paths:
            print(f"{name:<14} {torch.backends.cpu.get_cpu_capability():<7} {path:<6} g_a {best[path][0] * 1e3:6.0f} ms  "
                  f"g_s {best[path][1] * 1e3:6.0f} ms  (best of {args.repeats}; same bits on every path: {same})")  # fmt: skip


def kind_env(kind: str) -> dict:
    """The environment of a child process for a CPU kind (``avx2``: ATen, oneDNN and MKL
    restricted); an unknown kind ends the run."""
    if kind not in ("native", "avx2"):
        raise SystemExit(f"unknown CPU kind {kind!r} (native, avx2)")
    return dict(os.environ, **(AVX2_ONLY_ENV if kind == "avx2" else {}))


def load_model(name: str):
    """``bundled``: the bundled MLIC+ (its highest quality); else a random-weight default model."""
    if name == "bundled":
        from mlic import zoo

        entry = zoo.find("mlic-plus")
        return zoo.load(entry), entry.high
    torch.manual_seed(0)  # the same random weights in every process and run
    model = build(name).eval()
    model.update()
    return model, None


def input_image(args) -> torch.Tensor:
    if args.image:
        from mlic.eval.runner import read_rgb
        from mlic.io.tensor import rgb_to_tensor

        return rgb_to_tensor(read_rgb(args.image))
    w, h = (int(v) for v in args.size.lower().split("x"))
    torch.manual_seed(0)
    return torch.rand(1, 3, h, w)


def measure_here(args) -> list[dict]:
    """Every (model, precision, probability dtype) on this process's CPU kind."""
    from mlic.models.mlic import native_bf16

    torch.set_num_threads(args.threads)
    x = input_image(args)
    peak = machine_peak(args.threads)
    precisions = [p for p in args.precisions.split(",") if p != "bf16" or native_bf16()]
    rows = []
    for name in args.models.split(","):
        model, quality = load_model(name)
        flops = stage_flops(model, x)
        for precision, prob, path in product(precisions, args.probability.split(","), args.inference_path.split(",")):
            dtype = getattr(torch, prob)
            model.transform_precision = precision
            inference.enabled = path == "fast"
            t_enc, enc = best_of(lambda: model.compress(x, probability_dtype=dtype, quality=quality), args.repeats)
            t_dec, dec = best_of(lambda: model.decompress(enc["strings"], enc["shape"], enc["image_size"],
                                                          probability_dtype=dtype, quality=quality), args.repeats)  # fmt: skip
            nbytes = sum(len(s) for strings in enc["strings"] for s in strings)
            # how far this precision's decoded image is from the fp32 decode of the same stream
            model.transform_precision = "fp32"
            ref = model.decompress(enc["strings"], enc["shape"], enc["image_size"], probability_dtype=dtype,
                                   quality=quality)["x_hat"].clamp(0, 1)  # fmt: skip
            mse = torch.mean((dec["x_hat"].clamp(0, 1) - ref) ** 2).item()
            bound = flop_bound(flops, peak, precision, prob)
            inference.enabled = True
            rows.append({
                "model": name, "precision": precision, "probability": prob, "path": path, "compress": t_enc, "decompress": t_dec,
                "bound_compress": bound["compress"], "bound_decompress": bound["decompress"], "bytes": nbytes,
                "exact": bool(torch.equal(dec["y_hat"], enc["y_hat"])),
                "db_vs_fp32": None if mse == 0 else 10 * math.log10(1 / mse),
                "peak_gflops": {k: v / 1e9 for k, v in peak.items()},
            })  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="768x512", help="WIDTHxHEIGHT of a random input")
    ap.add_argument("--image", help="time this photo instead of a random input")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="bundled,mlic,mlic-plus,mlic-plusplus",
                    help="bundled (the bundled MLIC+) and/or architectures with random weights")
    ap.add_argument("--cpus", default="native,avx2", help="CPU kinds: native (this CPU) and/or avx2 (emulated)")
    ap.add_argument("--precisions", default="fp32,bf16", help="transform precisions to time (g_a, g_s only)")
    ap.add_argument("--probability", default="float64",
                    help="probability-path dtypes to time: float64 (format version 3, the default) and/or float32 (versions 1-2)")
    ap.add_argument("--inference-path", default="fast",
                    help="fast (in-place blocks, channels-last weights: mlic.nn.inference) and/or plain (the ordinary "
                         "path), to time what the fast path buys")  # fmt: skip
    ap.add_argument("--transforms", action="store_true",
                    help="g_a and g_s alone in fp32, the --inference-path values interleaved")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one CPU kind, rows as JSON (the children)
    ap.add_argument("--breakdown", action="store_true", help="per-stage times, FLOPs and FLOP/s")
    ap.add_argument("--sizes", default="768x512,1920x1080", help="with --breakdown: WIDTHxHEIGHT list")
    ap.add_argument("--thread-counts", default="1,2", help="with --breakdown: thread counts")
    args = ap.parse_args()
    envs = {kind: kind_env(kind) for kind in args.cpus.split(",")}  # every kind checked before any run
    if args.json:  # a child: one CPU kind
        if args.transforms:
            transforms(args)
        elif args.breakdown:
            breakdown(args)
        else:
            print(json.dumps(measure_here(args)))
        return
    if args.breakdown or args.transforms:
        for kind, env in envs.items():
            print(f"\n== {kind} CPU ==", flush=True)
            if subprocess.run([sys.executable, __file__, "--json", *sys.argv[1:]], env=env).returncode:
                raise SystemExit(f"the {kind} run failed")
        return
    where = f"{args.image}" if args.image else f"{args.size} random"
    print(f"{where}, {args.threads} threads, best of {args.repeats}")
    print(f"{'model':<14} {'cpu':<6} {'g_a/g_s':>7} {'prob.':>6} {'path':>5} {'compress s':>10} {'bound':>6} {'x':>5} "
          f"{'decompress s':>12} {'bound':>6} {'x':>5} {'bytes':>8} {'exact':>6} {'dB vs fp32':>10}")  # fmt: skip
    for kind, env in envs.items():
        cmd = [sys.executable, __file__, "--json", *sys.argv[1:]]
        if kind == "avx2":
            cmd += ["--precisions", "fp32"]  # bf16 is emulated there; auto runs fp32
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"the {kind} run failed:\n{done.stderr}")
        rows = json.loads(done.stdout.strip().splitlines()[-1])
        peak = rows[0]["peak_gflops"] if rows else {}
        bf16 = f"bf16 {peak['bfloat16']:.0f}" if peak.get("bfloat16") else "no native bf16"
        print(f"-- {kind}: matmul/conv throughput fp32 {peak.get('float32', 0):.0f}, float64 {peak.get('float64', 0):.0f} "
              f"GFLOP/s, {bf16}")  # fmt: skip
        for r in rows:
            gap = "exact" if r["db_vs_fp32"] is None else f"{r['db_vs_fp32']:.1f}"
            print(f"{r['model']:<14} {kind:<6} {r['precision']:>7} {r['probability'][5:]:>6} {r['path']:>5} {r['compress']:>10.2f} "
                  f"{r['bound_compress']:>6.2f} {r['compress'] / r['bound_compress']:>5.2f} {r['decompress']:>12.2f} "
                  f"{r['bound_decompress']:>6.2f} {r['decompress'] / r['bound_decompress']:>5.2f} {r['bytes']:>8} "
                  f"{str(r['exact']):>6} {gap:>10}")  # fmt: skip


if __name__ == "__main__":
    main()
