"""The README's Kodak RD table in one run: bundled models and classic codecs, real bitstreams.

    python benchmarks/kodak.py --kodak DIR [-o runs/kodak] [--codecs jpeg webp ...] [--images 24]
                               [--vvenc-preset medium] [--threads 2] [--redo [NAME ...]]
                               [--refine STEPS [--jobs N]]

Runs ``mlic eval`` on the bundled models and ``mlic bench`` on every classic codec
over the Kodak images in DIR (``--kodak``, default ``$MLIC_KODAK``; 24 images), keeping each curve in OUT/<name>.json (an
existing file is reused unless named by --redo, so an interrupted run continues), then prints
the RD points and the BD-rates (PCHIP, PSNR-RGB) of every curve against JPEG, WebP
and AVIF measured here and against the published VTM anchor (tests/data/anchors/kodak/vtm.json), and writes OUT/rd.svg
and the HTML report OUT/report/index.html. Takes about 25 minutes on 2 cores, most of
it VVenC (medium) and AVIF. ``--refine STEPS`` adds the curve "mlic-refine" of the bundled
models encoded with the encoder-side latent search (``mlic eval --refine STEPS``); with
``--jobs N`` our curves are measured by N one-thread processes, one quality each
(OUT/mlic.qQ.json, OUT/mlic-refine.qQ.json, reused like the curves), then merged. A
variable-rate model is measured at qualities 0.5 apart over its range.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from kodak_dir import add_kodak_argument, kodak_images
from mlic import zoo
from mlic.cli.common import DEFAULT_MODEL
from mlic.cli.main import main as mlic
from mlic.eval.bd import bd_rate
from mlic.eval.classic import CODECS, CodecUnavailable
from mlic.eval.results import load_results, merge_results, save_results

STEP = 0.5  # variable-rate weights are measured at qualities this far apart
VTM = Path(__file__).resolve().parents[1] / "tests" / "data" / "anchors" / "kodak" / "vtm.json"


def run(*args) -> None:
    rc = mlic([str(a) for a in args])
    if rc != 0:
        raise SystemExit(f"mlic {args[0]} failed with exit code {rc}")


def eval_in_parts(name: str, cmd: list, out: Path, jobs: int, redo: bool) -> None:
    """A curve of ours as one one-thread ``mlic eval`` process per bundled quality, ``jobs``
    at a time; parts already in OUT are reused unless ``redo``; then merged into one curve."""
    qualities = [q for q, _ in zoo.points(DEFAULT_MODEL, step=STEP)]
    cmd = cmd[: cmd.index("--quality")] if "--quality" in cmd else cmd
    parts = {q: out / f"{name}.q{q:g}.json" for q in qualities}
    todo = [q for q in qualities if redo or not parts[q].exists()]
    running: list[subprocess.Popen] = []
    while todo or running:
        while todo and len(running) < jobs:
            q = todo.pop(0)
            argv = [sys.executable, "-m", "mlic.cli.main", *map(str, cmd), "--quality", f"{q:g}",
                    "-o", str(parts[q]), "--force", "--threads", "1", "--quiet"]  # fmt: skip
            running.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
        time.sleep(1)
        for p in [p for p in running if p.poll() is not None]:
            running.remove(p)
            if p.returncode != 0:
                for other in running:
                    other.terminate()
                raise SystemExit(f"mlic eval ({name} part) failed with exit code {p.returncode}")
    merged = merge_results([load_results(parts[q]) for q in qualities])
    save_results(merged, out / f"{name}.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_kodak_argument(ap)
    ap.add_argument("-o", "--out", default="runs/kodak", help="output folder (default runs/kodak)")
    ap.add_argument("--codecs", nargs="*", default=list(CODECS), help=f"classic codecs (default: {' '.join(CODECS)})")
    ap.add_argument("--images", type=int, default=24, help="first N Kodak images")
    ap.add_argument("--vvenc-preset", default="medium")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--redo", nargs="*", metavar="NAME",
                    help="recompute these curves (mlic, jpeg, ...) even if OUT has them; no names: all")
    ap.add_argument("--refine", type=int, default=0, metavar="STEPS", help="also the bundled models with --refine STEPS")
    ap.add_argument("--jobs", type=int, default=1, help="processes (one thread, one quality each) for our curves")
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kodak = kodak_images(args.kodak, args.images)
    with tempfile.TemporaryDirectory(prefix="mlic-kodak-") as tmp:
        folder = Path(tmp)
        for p in kodak:
            (folder / p.name).symlink_to(p.resolve())
        curves: list[Path] = []
        qualities = ["--quality", *(f"{q:g}" for q, _ in zoo.points(DEFAULT_MODEL, step=STEP))]
        jobs = [("mlic", ["eval", folder, "--name", "mlic (bundled)", *qualities])]
        if args.refine:
            jobs.append(("mlic-refine", ["eval", folder, "--name", f"mlic (refine {args.refine})", "--refine", args.refine,
                                         *qualities]))  # fmt: skip
        for c in args.codecs:
            extra = ["--preset", args.vvenc_preset] if c == "vvenc" else []
            jobs.append((c, ["bench", c, folder, *extra]))
        for name, cmd in jobs:
            path = out / f"{name}.json"
            if not name.startswith("mlic"):
                try:
                    CODECS[name].check()
                except CodecUnavailable as exc:
                    print(f"skipped {name}: {exc}", file=sys.stderr)
                    continue
            redo = args.redo is not None and (not args.redo or name in args.redo)
            if not path.exists() or redo:
                t0 = time.perf_counter()
                if name.startswith("mlic") and args.jobs > 1:
                    eval_in_parts(name, cmd, out, args.jobs, redo=redo)
                else:
                    run(*cmd, "-o", path, "--force", "--threads", args.threads, "--quiet")
                print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
            curves.append(path)

        results = {p.stem: load_results(p) for p in curves}
        anchors = {k: results[k] for k in ("jpeg", "webp", "avif") if k in results}
        anchors["VTM (published)"] = load_results(VTM)
        print(f"\nKodak, {len(kodak)} images, whole-file bpp, PSNR-RGB on 8-bit output, {args.threads} threads")
        head = f"{'curve':<22}{'points':>7}{'bpp range':>16}{'PSNR range':>16}"
        print(head + "".join(f"{'vs ' + a:>20}" for a in anchors))
        for key, r in results.items():
            bpp, psnr = np.array(r.values("bpp")), np.array(r.values("psnr-rgb"))
            cells = []
            for a in anchors.values():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        cells.append(f"{bd_rate(a.values('bpp'), a.values('psnr-rgb'), bpp, psnr):+.1f} %")
                    except ValueError:
                        cells.append("n/a")
            print(f"{r.name:<22}{len(bpp):>7}{bpp.min():>8.3f}-{bpp.max():<7.3f}{psnr.min():>8.2f}-{psnr.max():<7.2f}"
                  + "".join(f"{c:>20}" for c in cells))  # fmt: skip
        print("\nBD-rate: PCHIP over the overlapping PSNR range; negative = fewer bits than the column's anchor.")
        plot_inputs = [*curves, VTM]
        run("plot", *plot_inputs, "-o", out / "rd.svg", "--force", "--max-bpp", "2.5")
        report_inputs = [c for c in curves if c.stem in ("mlic", "jpeg", "webp", "avif", "vvenc")]
        if (out / "report").exists():
            shutil.rmtree(out / "report")
        run("report", *report_inputs, "--images", folder, "-o", out / "report", "--anchor", "jpeg", "--crops", "3")


if __name__ == "__main__":
    main()
