"""What int8 convolutions would buy g_a on a CPU without bf16 (issue 22, item 3).

    python benchmarks/int8.py [--size 768x512] [--threads 2] [--repeats 5] [--cpus native,avx2]

For every convolution of the bundled model's g_a, at the shapes one image of ``--size`` gives
it, times the fp32 convolution as the codec runs it (channels-last, oneDNN) against the same
convolution in int8 through core torch's quantized engine (``x86``: FBGEMM / oneDNN; weights
per output channel, activations per tensor) including the quantisation of its input and the
dequantisation of its output, each best of ``--repeats``. Prints per layer and in total, with
g_a's whole fp32 time beside it, so the share an int8 g_a could save is read off directly.
``avx2`` runs in a fresh process restricted to AVX2 kernels (``mlic._torch_internals.
AVX2_ONLY_ENV`` and ``FBGEMM_ENABLE_INSTRUCTIONS=AVX2`` for the int8 kernels).

Only speed is measured: the scales are fixed, not calibrated, so the int8 outputs are not
meant to be good. The quantised tensors come from torch's quantized-tensor API, which torch
2.13 marks deprecated (``torch.quantize_per_tensor`` warns that it will be removed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings

import torch
from speed import best_of, kind_env


def measure(args) -> dict:
    import torch.ao.nn.quantized as nnq

    from mlic import zoo

    torch.set_num_threads(args.threads)
    torch.backends.quantized.engine = "x86"
    entry = zoo.find("mlic-plus")
    model = zoo.load(entry)
    model.transform_precision = "fp32"
    w, h = (int(v) for v in args.size.lower().split("x"))
    x = torch.rand(1, 3, h, w)
    inputs: list[tuple[torch.nn.Conv2d, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: inputs.append((m, i[0])))
             for m in model.g_a.modules() if isinstance(m, torch.nn.Conv2d)]  # fmt: skip
    with torch.no_grad():
        model.analysis(x)
        for hk in hooks:
            hk.remove()
        t_ga = best_of(lambda: model.analysis(x), args.repeats)[0]
        rows = []
        deprecated = False
        for conv, inp in inputs:
            t_fp32 = best_of(lambda: conv(inp), args.repeats)[0]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                q = nnq.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding)
                scale = conv.weight.abs().amax(dim=(1, 2, 3)).clamp_min(1e-8) / 127
                qw = torch.quantize_per_channel(conv.weight, scale, torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
                q.set_weight_bias(qw, conv.bias)
                q.scale, q.zero_point = 0.05, 128
                in_scale = float(inp.abs().max()) / 127 or 1.0
                deprecated |= any("deprecated" in str(c.message) for c in caught)

                def int8():
                    xq = torch.quantize_per_tensor(inp, in_scale, 128, torch.quint8)
                    return q(xq).dequantize()

                int8()
                t_int8 = best_of(int8, args.repeats)[0]
            rows.append({"layer": f"{conv.in_channels}->{conv.out_channels} k{conv.kernel_size[0]} s{conv.stride[0]} "
                                  f"at {inp.shape[-1]}x{inp.shape[-2]}", "fp32": t_fp32, "int8": t_int8})  # fmt: skip
    return {"g_a": t_ga, "rows": rows, "deprecated": deprecated, "capability": torch.backends.cpu.get_cpu_capability()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="768x512")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cpus", default="native,avx2")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.json:
        print(json.dumps(measure(args)))
        return
    envs = {kind: kind_env(kind) for kind in args.cpus.split(",")}  # every kind checked before any run
    for kind, env in envs.items():
        if kind == "avx2":
            env["FBGEMM_ENABLE_INSTRUCTIONS"] = "AVX2"
        done = subprocess.run([sys.executable, __file__, "--json", *sys.argv[1:]], env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"the {kind} run failed:\n{done.stderr}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"\n-- {kind} ({r['capability']}), {args.size}, {args.threads} thread(s), best of {args.repeats}: "
              f"g_a fp32 {r['g_a'] * 1e3:.0f} ms")  # fmt: skip
        print(f"  {'convolution':<30} {'fp32 ms':>8} {'int8 ms':>8} {'x':>5}")
        for row in r["rows"]:
            print(f"  {row['layer']:<30} {row['fp32'] * 1e3:>8.1f} {row['int8'] * 1e3:>8.1f} {row['fp32'] / row['int8']:>5.2f}")
        f, i = sum(row["fp32"] for row in r["rows"]), sum(row["int8"] for row in r["rows"])
        print(f"  {'all convolutions':<30} {f * 1e3:>8.1f} {i * 1e3:>8.1f} {f / i:>5.2f}")
        print(f"  g_a with int8 convolutions, at best: {(r['g_a'] - f + i) * 1e3:.0f} ms "
              f"({r['g_a'] / (r['g_a'] - f + i):.2f}x); torch warned the API is deprecated: {r['deprecated']}")


if __name__ == "__main__":
    main()
