"""The evaluation verbs: ``eval``, ``bench``, ``bd-rate``, ``plot`` and ``report``."""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

from ..errors import MlicError
from ..io.files import check_input_file
from .common import (
    DEFAULT_MODEL,
    EXIT_INPUT,
    EXIT_OK,
    UsageError,
    _set_threads,
    add_batch_options,
    add_precision,
    check_precision,
    show_progress,
    step_count,
    thread_count,
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}


def expand_inputs(items: list[str]) -> list[Path]:
    """Image files, and the images directly inside given folders (sorted)."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not found:
                raise MlicError(f"{p}: no images in this folder")
            out += found
        else:
            check_input_file(p, MlicError, missing="no such file or folder")
            out.append(p)
    return out


def _check_output(path: str | None, force: bool) -> None:
    if path and Path(path).exists() and not force:
        raise MlicError(f"{path} exists; use --force to overwrite")


def _print_curve(results) -> None:
    s = results.series
    print(f"{results.name}: {results.extra.get('images')} images, bpp from {results.extra.get('bpp_kind')}")
    print(f"{'quality':>8} {'bpp':>8} {'PSNR dB':>8} {'MS-SSIM':>8} {'enc s':>7} {'dec s':>7}")
    for i in range(len(s["bpp"])):
        ms = s["ms-ssim-rgb"][i]
        print(f"{s['quality'][i]:>8g} {s['bpp'][i]:>8.4f} {s['psnr-rgb'][i]:>8.3f} "
              f"{'n/a' if ms is None else f'{ms:.4f}':>8} {s['encoding_time'][i]:>7.3f} {s['decoding_time'][i]:>7.3f}")  # fmt: skip


# -- eval -------------------------------------------------------------------------------
def _eval_points(args):
    """[(quality, model, record)] for the requested weights or bundled qualities."""
    from .. import zoo
    from ..io.weights import load_model, model_digest, training_tradeoff

    points = []
    if args.weights:
        models = [load_model(w) for w in args.weights]
        variable = [m.config.variable_rate for m in models]
        if args.quality and not all(variable):
            raise UsageError("--quality with --weights needs variable-rate weights (one-rate files are one point each)")
        for i, (w, model) in enumerate(zip(args.weights, models), 1):
            if args.model and model.config.name != args.model:
                raise UsageError(f"--model {args.model} but {w} holds {model.config.name}")
            record = {"weights": str(Path(w).resolve()), "sha256": model_digest(model)}
            if model.config.variable_rate:
                low, high = model.config.quality_range
                for q in _qualities(args.quality, low, high):
                    points.append((q, model, {"quality": q, **record, "lambda": model.rate_lambda(q), "metric": "mse"}))
                continue
            lmbda, metric = training_tradeoff(w)
            if lmbda is not None:
                record.update({"lambda": lmbda, "metric": metric or "mse"})
            points.append((i, model, {"quality": i, **record}))
        return points
    name = args.model or DEFAULT_MODEL
    entries = [e for e in zoo.entries() if e.model == name and e.metric == args.metric]
    if not entries:
        zoo.find(name, None, args.metric)  # raises with the list of what is bundled
    loaded: dict[str, object] = {}
    wanted = args.quality or sorted({q for e in entries for q in _qualities(None, e.low, e.high)})
    for q in wanted:
        e = zoo.find(name, q, args.metric)  # raises for a quality outside what is bundled
        model = loaded.setdefault(e.file, zoo.load(e))
        record = {"quality": q, "weights": f"bundled:{e.model}/{e.metric}/{e.file}", "sha256": e.sha256,
                  "lambda": e.lmbda if e.lmbda is not None else model.rate_lambda(q)}  # fmt: skip
        points.append((q, model, record))
    return points


def _qualities(asked: list[float] | None, low: float, high: float) -> list[float]:
    """The qualities to evaluate: those asked (each in [low, high]), else every whole one in the range."""
    if not asked:
        return [float(q) for q in range(math.ceil(low), math.floor(high) + 1)]
    for q in asked:
        if not low <= q <= high:
            raise UsageError(f"--quality {q:g} is outside the weights' range {low:g}-{high:g}")
    return list(asked)


def _eval_codecs(args) -> tuple[list, list]:
    """The points of ``_eval_points`` and their codec functions ``[(quality, fn)]``."""
    from ..eval.runner import model_codec
    from ..models.mlic import resolve_precision

    points = _eval_points(args)
    metric = "custom" if args.weights else args.metric
    fns = []
    for q, m, record in points:
        m.transform_precision = args.precision
        record["transform_precision"] = resolve_precision(args.precision)
        search = {}
        if args.refine:
            if "lambda" not in record:
                raise UsageError(f"{record['weights']} does not record its lambda, which --refine needs")
            search = {"refine": args.refine, "lmbda": record["lambda"], "search_metric": record.get("metric", args.metric)}
            record["refine"] = args.refine
        header_quality = q if (m.config.variable_rate or not args.weights) else 0
        fns.append((q, model_codec(m, estimate=args.estimate, quality=header_quality, metric=metric, **search)))
    return points, fns


def _eval_measurer(args, bar: bool):
    """``one(point index, image path) -> measured row``, for ``--jobs`` workers."""
    from ..eval.runner import measure, read_rgb

    _, fns = _eval_codecs(args)

    def one(i: int, path: Path) -> dict:
        rgb = read_rgb(path)
        return measure(rgb, fns[i][1](rgb))

    return one


def _cmd_eval(args) -> int:
    from ..eval.results import save_results
    from ..eval.runner import curve, run_points

    _set_threads(args.threads)
    check_precision(args.precision)
    _check_output(args.output, args.force)
    images = expand_inputs(args.inputs)
    if args.refine and args.estimate:
        raise UsageError("--refine codes real files; it cannot be combined with --estimate")
    points, fns = _eval_codecs(args)
    name = args.name or points[0][1].config.name
    kind = "estimate" if args.estimate else "bitstream"
    description = f"{name}, {'entropy estimate' if args.estimate else 'real .mlic files'}, {len(images)} images"
    extra = {"source": "mlic", "points": [r for _, _, r in points]}
    jobs = min(args.jobs, len(points) * len(images))
    if jobs > 1:
        from tqdm import tqdm

        from .pool import pool_map

        del fns
        tasks = [(i, p) for i in range(len(points)) for p in images]
        extra.update({"jobs": jobs, "threads_per_job": args.threads or 1})
        done = pool_map(_eval_measurer, args, tasks, jobs, args.threads or 1)
        flat = []
        for row, error, _ in tqdm(done, total=len(tasks), desc=name, unit="img", file=sys.stderr,
                                  disable=not show_progress(args.quiet), leave=False):  # fmt: skip
            if error is not None:
                raise error
            flat.append(row)
        rows = [flat[i * len(images) : (i + 1) * len(images)] for i in range(len(points))]
        results = curve(name, [q for q, _, _ in points], images, rows, description=description, bpp_kind=kind, extra=extra)
    else:
        results = run_points(name, fns, images, bpp_kind=kind, progress=show_progress(args.quiet),
                             description=description, extra=extra)  # fmt: skip
    _print_curve(results)
    if args.output:
        print(f"results: {save_results(results, args.output, force=True)}")
    return EXIT_OK


# -- bench ------------------------------------------------------------------------------
def _cmd_bench(args) -> int:
    from ..eval import classic
    from ..eval.results import save_results
    from ..eval.runner import run_points

    _set_threads(args.threads)
    _check_output(args.output, args.force)
    codec = classic.get(args.codec)
    values = args.values or list(codec.sweep)
    for v in values:
        try:
            codec.check_value(v)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    codec.check()
    images = expand_inputs(args.inputs)
    points = [(v, codec.codec(v, args.preset)) for v in values]
    extra = {"source": "bench", "codec": codec.name, "parameter": codec.parameter}
    if args.preset:
        extra["preset"] = args.preset
    results = run_points(args.name or codec.name, points, images, bpp_kind="bitstream", progress=not args.quiet,
                         description=f"{codec.label}, {codec.parameter} sweep, {len(images)} images", extra=extra)  # fmt: skip
    _print_curve(results)
    if args.output:
        print(f"results: {save_results(results, args.output, force=True)}")
    return EXIT_OK


# -- bd-rate ----------------------------------------------------------------------------
def _cmd_bd_rate(args) -> int:
    from ..eval.bd import bd_psnr, bd_rate
    from ..eval.results import load_results

    anchor = load_results(args.anchor)
    unit = "dB" if args.metric == "psnr-rgb" else ""
    computed = 0
    print(f"anchor: {anchor.name} ({len(anchor.series['bpp'])} points), metric {args.metric}, {args.method}")
    for path in args.tests:
        test = load_results(path)
        ra, qa = anchor.values("bpp"), anchor.values(args.metric)
        rt, qt = test.values("bpp"), test.values(args.metric)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                rate = bd_rate(ra, qa, rt, qt, args.method)
                delta = bd_psnr(ra, qa, rt, qt, args.method)
            except ValueError as exc:
                print(f"mlic: warning: {test.name}: {exc}; BD-rate not defined "
                      f"(anchor {min(qa):.4g}-{max(qa):.4g}, test {min(qt):.4g}-{max(qt):.4g})", file=sys.stderr)  # fmt: skip
                print(f"{test.name}: BD-rate n/a")
                continue
        for w in {str(w.message) for w in caught}:
            print(f"mlic: warning: {test.name}: {w}", file=sys.stderr)
        computed += 1
        print(f"{test.name}: BD-rate {rate:+.2f} %, BD-{'PSNR' if unit else 'quality'} {delta:+.4f}{(' ' + unit) if unit else ''}")
    return EXIT_OK if computed else EXIT_INPUT


# -- plot / report ----------------------------------------------------------------------
def _cmd_plot(args) -> int:
    from ..eval.plot import save_plot
    from ..eval.results import load_results

    results = [load_results(p) for p in args.results]
    out = save_plot(results, args.output, force=args.force, title=args.title or "", max_bpp=args.max_bpp)
    print(f"plot: {out}")
    return EXIT_OK


def _cmd_report(args) -> int:
    from ..eval.report import build_report
    from ..eval.results import load_results
    from ..io.files import atomic_write

    _set_threads(args.threads)
    out_dir = Path(args.output)
    page = out_dir / "index.html"
    _check_output(str(page), args.force)
    results = [load_results(p) for p in args.results]
    images = expand_inputs([args.images]) if args.images else []
    text = build_report(results, images, anchor=args.anchor, crops=args.crops, method=args.method, title=args.title)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MlicError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    atomic_write(page, lambda f: f.write(text.encode()), force=True)
    print(f"report: {page}")
    return EXIT_OK


def add_commands(sub) -> None:
    from ..eval.bd import METHODS
    from ..eval.classic import CODECS

    ev = sub.add_parser("eval", help="evaluate models with real bitstreams (RD results JSON)",
                        description="Compress and decompress every image for real with each rate point; report "
                        "bpp (whole file), PSNR-RGB, MS-SSIM and times in CompressAI's results schema.")  # fmt: skip
    ev.add_argument("inputs", nargs="+", metavar="INPUT", help="images or folders of images")
    ev.add_argument("--model", help=f"bundled model family (default {DEFAULT_MODEL})")
    ev.add_argument("--quality", type=float, nargs="+",
                    help="qualities, real numbers in the bundled (or variable-rate --weights) range "
                         "(default: every whole quality)")
    ev.add_argument("--metric", default="mse", choices=("mse", "ms-ssim"), help="bundled models' training metric")
    ev.add_argument("--weights", nargs="+", help="weights files instead of bundled models (one rate point each)")
    ev.add_argument("--estimate", action="store_true", help="entropy estimate from the likelihoods instead of real files")
    ev.add_argument("--refine", type=step_count, default=0, metavar="STEPS", help="encode with the latent search (see compress)")
    ev.add_argument("--name", help="curve name in the results (default: the model family)")
    ev.add_argument("-o", "--output", help="results JSON file")
    ev.add_argument("--force", action="store_true", help="overwrite OUTPUT")
    add_batch_options(ev)
    add_precision(ev)
    ev.set_defaults(func=_cmd_eval)

    b = sub.add_parser("bench", help="run a classic codec over images (RD results JSON)",
                       description="Sweep a classic codec's quality setting over images: " +
                       "; ".join(f"{c.name} = {c.label}" for c in CODECS.values()) + ". Needs mlic[bench] for jpegxl, x265, vvenc.")  # fmt: skip
    b.add_argument("codec", choices=sorted(CODECS), metavar="CODEC", help=", ".join(CODECS))
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="images or folders of images")
    b.add_argument("--values", type=float, nargs="+", help="quality settings (default: the codec's sweep)")
    b.add_argument("--preset", help="encoder preset for x265 (default veryslow) and vvenc (default medium)")
    b.add_argument("--name", help="curve name (default: the codec name)")
    b.add_argument("-o", "--output", help="results JSON file")
    b.add_argument("--force", action="store_true", help="overwrite OUTPUT")
    b.add_argument("--threads", type=thread_count, help="CPU threads for torch (colour conversions)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_cmd_bench)

    d = sub.add_parser("bd-rate", help="Bjontegaard deltas of results files against an anchor",
                       description="Bjontegaard rate and quality deltas (exact integration over the overlap). "
                       "Warns with fewer than 4 points or without overlap.")  # fmt: skip
    d.add_argument("anchor", help="anchor results JSON (CompressAI schema or the MLIC papers' bpp/psnr)")
    d.add_argument("tests", nargs="+", metavar="TEST", help="results JSON files to compare")
    d.add_argument("--metric", default="psnr-rgb", choices=("psnr-rgb", "ms-ssim-rgb"))
    d.add_argument("--method", default="pchip", choices=METHODS, help="interpolation (default pchip, JVET practice)")
    d.set_defaults(func=_cmd_bd_rate)

    p = sub.add_parser("plot", help="RD curves of results files (PNG, SVG or PDF)",
                       description="Plot PSNR-RGB and MS-SSIM (dB) against bpp; our models solid, anchors dashed.")  # fmt: skip
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results JSON files")
    p.add_argument("-o", "--output", required=True, help="rd.png, rd.svg or rd.pdf")
    p.add_argument("--title", help="figure title")
    p.add_argument("--max-bpp", type=float, help="leave out points above this bpp")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT")
    p.set_defaults(func=_cmd_plot)

    r = sub.add_parser("report", help="self-contained HTML report with plots, BD-rates and crops",
                       description="Write OUT/index.html: RD plots, a BD-rate table against an anchor, and "
                       "side-by-side crops of original, our codec and the benched classic codecs at matched bpp.")  # fmt: skip
    r.add_argument("results", nargs="+", metavar="RESULTS", help="results JSON files (from eval, bench, or anchors)")
    r.add_argument("--images", help="folder of the original images (for the crops)")
    r.add_argument("-o", "--output", required=True, help="output folder")
    r.add_argument("--anchor", help="name of the anchor curve (default: the first that is not ours)")
    r.add_argument("--crops", type=int, default=3, help="images shown as crops (default 3)")
    r.add_argument("--method", default="pchip", choices=METHODS)
    r.add_argument("--title", default="mlic RD report")
    r.add_argument("--force", action="store_true", help="overwrite OUT/index.html")
    r.add_argument("--threads", type=thread_count, help="CPU threads for torch")
    r.set_defaults(func=_cmd_report)
