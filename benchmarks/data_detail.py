"""How detailed training photos are: JPEG quality-75 bits per pixel on 128x128 crops.

    .venv/bin/python benchmarks/data_detail.py data/train [--compare KODAK_DIR] [--crops 20] [--seed 0]

Per package (the part of a file name before ``__``, as scripts/get-training-data names its
outputs) and for the whole pool: the mean JPEG q75 bpp (Pillow, 4:2:0) of ``--crops`` uniform
random 128x128 crops per photo, as the images are loaded for training (JPEGs downscaled 2x).
A last line gives the same for the crops ``mlic train --pyramid 3 --crop-candidates 4`` draws
(256 crops from its own batches, each cut to its central 128x128). ``--compare`` adds a folder
measured the same way (Kodak, for reference only: never pick training data with it).
"""

from __future__ import annotations

import argparse
import io
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from mlic.train.data import CropStream, find_images, load_rgb

SIDE = 128


def jpeg_bpp(patch: np.ndarray) -> float:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(patch)).save(buf, format="JPEG", quality=75)
    return 8.0 * buf.tell() / (patch.shape[0] * patch.shape[1])


def uniform_crops(img: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = img.shape[:2]
    tops, lefts = rng.integers(0, h - SIDE + 1, n), rng.integers(0, w - SIDE + 1, n)
    return [img[t : t + SIDE, x : x + SIDE] for t, x in zip(tops, lefts)]


def per_package(folder: str, crops: int, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = defaultdict(list)
    for path in find_images([folder]):
        package = path.stem.split("__")[0] if "__" in path.stem else Path(folder).name
        out[package] += [jpeg_bpp(c) for c in uniform_crops(load_rgb(path), crops, rng)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--compare", help="another folder measured the same way (e.g. Kodak)")
    ap.add_argument("--crops", type=int, default=20, help="uniform crops per photo")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rows = per_package(args.folder, args.crops, args.seed)
    print(f"{'source':44s} {'photos':>6s} {'JPEG q75 bpp':>12s}")
    for package, values in sorted(rows.items()):
        print(f"{package:44s} {len(values) // args.crops:6d} {np.mean(values):12.3f}")
    pool = [v for values in rows.values() for v in values]
    print(f"{'pool (uniform crops)':44s} {len(pool) // args.crops:6d} {np.mean(pool):12.3f}")
    stream = CropStream([args.folder], seed=args.seed, pyramid=3, candidates=4)
    trained = []
    for step in range(32):
        batch = stream.batch(step, 8, 256).permute(0, 2, 3, 1).mul(255).round().byte().numpy()
        trained += [jpeg_bpp(b[64:192, 64:192]) for b in batch]
    print(f"{'pool as trained (pyramid 3, 4 candidates)':44s} {'':6s} {np.mean(trained):12.3f}")
    if args.compare:
        ref = per_package(args.compare, args.crops, args.seed)
        values = [v for vs in ref.values() for v in vs]
        print(f"{Path(args.compare).name + ' (reference)':44s} {len(values) // args.crops:6d} {np.mean(values):12.3f}")


if __name__ == "__main__":
    main()
