"""Entropy-model health per model and image: where the bits go, whether z is alive.

    python benchmarks/health.py IMAGE_OR_FOLDER... [--weights W.safetensors ...] [--threads 2]

For every model (default: every bundled quality; ``--weights`` for other files) and image:

- ``est bpp``: the entropy estimate of an eval forward (``-log2`` of the likelihoods);
- ``real bpp``: the coded y and z streams of ``model.compress`` (no container), and ``real/est``;
- ``z share``: the z bits' share of the estimate; ``z act``: active z channels (at least 1 %
  of their symbols differ from the channel's most common one);
- ``outl``: the share of the y bits on elements with likelihood < 1e-6, then per slice
  ``anchor/non-anchor``.

A last row per model averages the images (outlier and z shares weighted by bits). Healthy
ranges and the readings of the bundled models: docs/models.md, "Entropy-model health".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from mlic import zoo
from mlic.io.image import read_image
from mlic.io.tensor import rgb_to_tensor
from mlic.io.weights import load_model
from mlic.models.health import rate_health
from mlic.train.data import find_images


def image_files(paths: list[str]) -> list[Path]:
    """The files given, then the images found in the folders given; exits when there are none."""
    files = [Path(p) for p in paths if Path(p).is_file()]
    folders = [p for p in paths if Path(p).is_dir()]
    if folders:
        files += find_images(folders)
    if not files:
        raise SystemExit("no images given")
    return files


def models(weights: list[str]):
    if weights:
        out = []
        for w in weights:
            m = load_model(w)
            qualities = range(m.config.quality_range[0], m.config.quality_range[1] + 1) if m.config.variable_rate else [None]
            out += [(Path(w).stem + (f" q{q}" if q is not None else ""), lambda w=w: load_model(w), q) for q in qualities]
        return out
    return [(f"{e.model} q{q:g}", lambda e=e: zoo.load(e), q) for q, e in zoo.points(metric=None)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", help="image files or folders (searched recursively)")
    ap.add_argument("--weights", action="append", default=[], help="a .safetensors file (repeatable)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-real", action="store_true", help="skip the coded files (estimates only)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    files = image_files(args.images)
    for name, load, quality in models(args.weights):
        model = load().eval()
        model.update()
        print(f"\n### {name}\n")
        slices = " | ".join(f"s{i} a/n" for i in range(model.slices))
        print(f"| image | est bpp | real bpp | real/est | z share | z act | outl | {slices} |")
        print("|" + " --- |" * (7 + model.slices))
        tot = {"px": 0, "est": 0.0, "real": 0.0, "z": 0.0, "y": 0.0, "out": 0.0, "act": 0}
        per_slice_tot = [[0.0, 0.0] for _ in range(model.slices)]
        for path in files:
            img = read_image(path)
            x = rgb_to_tensor(img.rgb)
            px = x.shape[-2] * x.shape[-1]
            with torch.no_grad():
                r = rate_health(model, model(x, quality))
                real = None
                if not args.no_real:
                    enc = model.compress(x, quality=quality)
                    real = 8 * sum(len(s) for ss in enc["strings"] for s in ss)
            est = r.y_bits + r.z_bits
            cells = " | ".join(f"{r.outlier_share_of(i, 'anchor'):.1%}/{r.outlier_share_of(i, 'nonanchor'):.1%}"
                               for i in range(model.slices))  # fmt: skip
            real_cells = f"{real / px:.4f} | {real / est:.3f}" if real is not None else "- | -"
            print(f"| {path.name} | {est / px:.4f} | {real_cells} | {r.z_share:.2%} | {r.active_z}/{r.z_channels} "
                  f"| {r.outlier_share:.2%} | {cells} |")  # fmt: skip
            tot["px"] += px
            tot["est"] += est
            tot["real"] += real or 0.0
            tot["z"] += r.z_bits
            tot["y"] += r.y_bits
            tot["out"] += r.outlier_share * r.y_bits
            tot["act"] += r.active_z
            for i in range(model.slices):
                for j, half in enumerate(("anchor", "nonanchor")):
                    per_slice_tot[i][j] += r.outlier_bits[i][half]
            for line in r.problems():
                print(f"<!-- {path.name}: {line} -->", file=sys.stderr)
        n = len(files)
        cells = " | ".join(f"{a / tot['y']:.1%}/{b / tot['y']:.1%}" for a, b in per_slice_tot)
        real_cells = f"{tot['real'] / tot['px']:.4f} | {tot['real'] / tot['est']:.3f}" if not args.no_real else "- | -"
        print(f"| **all {n}** | {tot['est'] / tot['px']:.4f} | {real_cells} | {tot['z'] / (tot['z'] + tot['y']):.2%} "
              f"| {tot['act'] / n:.1f}/{model.N} | {tot['out'] / tot['y']:.2%} | {cells} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
