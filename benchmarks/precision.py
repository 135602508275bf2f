"""Transform precision (g_a / g_s in fp32 or bf16) and the CPU's kernels: what changes, measured.

    python benchmarks/precision.py --kodak DIR [--images 6] [--no-avx2]

For every bundled quality and the first N Kodak images (``--kodak``, default ``$MLIC_KODAK``):

- encoder: the file written with g_a in fp32 and in bf16 (``--precision`` of ``mlic
  compress``): bytes, and PSNR of its fp32 decode;
- decoder: the fp32-encoded file decoded with g_s in fp32 and in bf16 on this CPU: the share
  of 8-bit values that differ, the largest difference, the PSNR change against the original;
- other kernels (unless ``--no-avx2``): the same files decoded in a fresh process that runs
  torch with AVX2 kernels only (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
  MKL_ENABLE_INSTRUCTIONS=AVX2``: how a CPU without AVX-512 runs; bf16 is then emulated),
  compared with this CPU's decodes of the same precision. The decoded symbols (SHA-256) must be identical everywhere.

Prints Markdown tables (docs/determinism.md, "Transform precision").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from kodak_dir import add_kodak_argument, kodak_images

from mlic import zoo
from mlic._torch_internals import AVX2_ONLY_ENV
from mlic.cli.common import DEFAULT_MODEL
from mlic.codec import compress_image, decode_tiles
from mlic.eval import psnr_rgb
from mlic.io.container import unpack
from mlic.io.image import read_image
from mlic.io.tensor import tensor_to_rgb
from mlic.models.mlic import native_bf16

def decode(path: Path, precision: str, cache: dict) -> tuple[np.ndarray, str]:
    """(8-bit RGB, SHA-256 of the decoded symbols of every tile) of a .mlic file."""
    f = unpack(path.read_bytes())
    entry = zoo.by_tag(f.header.model, f.header.weights_hash)
    if entry.file not in cache:
        cache[entry.file] = zoo.load(entry)
    model = cache[entry.file]
    model.transform_precision = precision
    rgb = np.empty((f.header.height, f.header.width, 3), dtype=np.uint8)
    digests = []
    for (top, left, h, w), dec in decode_tiles(f, model):
        rgb[top : top + h, left : left + w] = tensor_to_rgb(dec["x_hat"])
        digests += dec["symbols_sha256"]
    return rgb, ",".join(digests)


def decode_folder(folder: Path) -> None:
    """The other-kernels leg: decode every file in both precisions, save the results beside it."""
    cache: dict = {}
    for path in sorted(folder.glob("*.fp32.mlic")):
        stem = path.name.removesuffix(".fp32.mlic")
        for precision in ("fp32", "bf16"):
            rgb, digest = decode(path, precision, cache)
            np.save(folder / f"{stem}.{precision}.avx2.npy", rgb)
            (folder / f"{stem}.{precision}.avx2.sha").write_text(digest)


def diff(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    d = np.abs(a.astype(int) - b.astype(int))
    return 100.0 * float((d > 0).mean()), int(d.max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_kodak_argument(ap)
    ap.add_argument("--images", type=int, default=6, help="first N Kodak images (default 6)")
    ap.add_argument("--no-avx2", action="store_true", help="skip the fresh process with AVX2 kernels")
    ap.add_argument("--decode-folder", help=argparse.SUPPRESS)  # the AVX2 leg (internal)
    args = ap.parse_args()
    if args.decode_folder:
        decode_folder(Path(args.decode_folder))
        return
    images = kodak_images(args.kodak, args.images)
    if not native_bf16():
        print("note: this CPU has no native bf16 kernels: bf16 below is emulated", file=sys.stderr)
    entries = zoo.points(DEFAULT_MODEL)
    rows: dict[float, list[dict]] = {q: [] for q, _ in entries}
    cache: dict = {}
    with tempfile.TemporaryDirectory(prefix="mlic-precision-") as tmp:
        folder = Path(tmp)
        for q, e in entries:
            model = zoo.load(e)
            for img_path in images:
                image = read_image(img_path)
                r = {"image": img_path.name}
                for precision in ("fp32", "bf16"):  # the encoder's g_a
                    model.transform_precision = precision
                    data = compress_image(model, image, quality=q, metric=e.metric)
                    path = folder / f"q{q}-{img_path.stem}.{precision}.mlic"
                    path.write_bytes(data)
                    rgb, digest = decode(path, "fp32", cache)
                    r[f"enc_{precision}"] = (len(data), psnr_rgb(image.rgb, rgb))
                path = folder / f"q{q}-{img_path.stem}.fp32.mlic"
                for precision in ("fp32", "bf16"):  # the decoder's g_s, on the fp32-encoded file
                    rgb, digest = decode(path, precision, cache)
                    r[f"dec_{precision}"] = rgb
                    r[f"sha_{precision}"] = digest
                r["psnr"] = {p: psnr_rgb(image.rgb, r[f"dec_{p}"]) for p in ("fp32", "bf16")}
                rows[q].append(r)
                print(f"q{q} {img_path.name}", file=sys.stderr, flush=True)
        if not args.no_avx2:
            env = dict(os.environ, **AVX2_ONLY_ENV)
            subprocess.run([sys.executable, __file__, "--decode-folder", str(folder)], env=env, check=True)
        print(f"\n{len(images)} Kodak images, bundled {DEFAULT_MODEL} (MSE); this CPU: "
              f"{'native' if native_bf16() else 'emulated'} bf16\n")  # fmt: skip
        print("| quality | encoder g_a bf16 vs fp32: bytes | PSNR (dB) | decoder g_s bf16 vs fp32: values differing | "
              "largest | PSNR change (dB), mean / max |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- |")
        for q, rs in rows.items():
            nbytes = 100 * (sum(r["enc_bf16"][0] for r in rs) / sum(r["enc_fp32"][0] for r in rs) - 1)
            dpsnr = np.mean([r["enc_bf16"][1] - r["enc_fp32"][1] for r in rs])
            share = [diff(r["dec_bf16"], r["dec_fp32"]) for r in rs]
            change = [r["psnr"]["bf16"] - r["psnr"]["fp32"] for r in rs]
            assert all(r["sha_bf16"] == r["sha_fp32"] for r in rs), "symbols differ between precisions"
            print(f"| {q} | {nbytes:+.2f} % | {dpsnr:+.4f} | {min(s for s, _ in share):.1f}-{max(s for s, _ in share):.1f} % | "
                  f"{max(m for _, m in share)} | {np.mean(change):+.4f} / {max(change, key=abs):+.4f} |")  # fmt: skip
        if args.no_avx2:
            return
        print("\n| quality | AVX2 kernels vs this CPU, fp32: values differing | largest | bf16 (AVX2 emulated): values differing | largest | symbols identical |")
        print("| --- | --- | --- | --- | --- | --- |")
        for q, rs in rows.items():
            cells, same = [], True
            for precision in ("fp32", "bf16"):
                d = []
                for r in rs:
                    stem = folder / f"q{q}-{Path(r['image']).stem}"
                    other = np.load(f"{stem}.{precision}.avx2.npy")
                    same &= Path(f"{stem}.{precision}.avx2.sha").read_text() == r[f"sha_{precision}"]
                    d.append(diff(other, r[f"dec_{precision}"]))
                cells += [f"{min(s for s, _ in d):.3f}-{max(s for s, _ in d):.3f} %", str(max(m for _, m in d))]
            print(f"| {q} | {' | '.join(cells)} | {'yes' if same else 'NO'} |")
        print(json.dumps({"images": [p.name for p in images]}))


if __name__ == "__main__":
    main()
