"""``mlic``: the command-line entry point.

Exit codes: 0 success, 1 usage error, 2 bad input or file, 3 internal error (a bug),
130 interrupted. Errors are printed as one line on stderr; ``--debug`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from pathlib import Path

from .. import __version__
from ..errors import MlicError
from .common import (  # noqa: F401 - re-exported for tests and the other verbs
    DEFAULT_MODEL,
    EXIT_BROKEN_PIPE,
    EXIT_BUG,
    EXIT_INPUT,
    EXIT_INTERRUPT,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    WorkBar,
    _Parser,
    _progress,
    _set_threads,
    add_batch_options,
    add_precision,
    check_precision,
    show_progress,
    step_count,
    thread_count,
    timed_call,
)


def _out_path(src: Path, output: str | None, n_inputs: int, suffix: str) -> Path:
    if output is None:
        return src.with_suffix(suffix)
    out = Path(output)
    if n_inputs > 1:
        if not out.is_dir():
            raise UsageError("with several inputs, -o must be an existing directory")
        return out / src.with_suffix(suffix).name
    return out / src.with_suffix(suffix).name if out.is_dir() else out


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _plan_outputs(args, suffix: str) -> tuple[list[Path], list[Path]]:
    """Inputs and their outputs, checked before any work: never the input, never an existing file without --force."""
    inputs = [Path(p) for p in args.inputs]
    outputs = [_out_path(p, args.output, len(inputs), suffix) for p in inputs]
    for src, dst in zip(inputs, outputs):
        if _same_file(src, dst):
            raise UsageError(f"output {dst} would overwrite its input")
        if dst.exists() and not args.force:
            raise MlicError(f"{dst} exists; use -o to choose another name or --force to overwrite")
    return inputs, outputs


def _run_batch(args, inputs: list[Path], outputs: list[Path], desc: str, make_one) -> int:
    """Run ``make_one(args, bar) -> one`` then ``one(src, dst) -> summary`` per file: one line
    each; with several files an error skips that file (reported on stderr) and the exit code
    says some failed. ``--jobs N``: N worker processes (one thread each unless --threads), each
    building its own ``one``; lines come in input order."""
    jobs = min(args.jobs, len(inputs))
    single = len(inputs) == 1
    one = make_one(args, show_progress(args.quiet) and single)  # checks the options and loads the model here
    if jobs > 1:
        del one
        from .pool import pool_map

        results = pool_map(make_one, args, list(zip(inputs, outputs)), jobs, args.threads or 1)
    else:
        results = (timed_call(one, src, dst) for src, dst in zip(_progress(inputs, desc, args.quiet), outputs))
    failures = 0
    for (src, dst), (summary, error, seconds) in zip(zip(inputs, outputs), results):
        if error is not None:
            if single:
                raise error
            failures += 1
            message = str(error) if str(src) in str(error) else f"{src}: {error}"
            print(f"mlic: error: {message}", file=sys.stderr)
            continue
        print(f"{src} -> {dst}: {summary}, {seconds:.2f} s", flush=True)
    return EXIT_INPUT if failures else EXIT_OK


# -- compress ---------------------------------------------------------------------
def _encoder_model(args):
    """(model, quality, metric, search options for compress_image)."""
    from .. import zoo
    from ..io.weights import load_model, training_tradeoff

    if args.refine_lambda is not None and not args.refine_lambda > 0:
        raise UsageError("--refine-lambda must be positive")
    targets = [t for t in ("target_bytes", "target_bpp", "target_psnr") if getattr(args, t, None) is not None]
    if len(targets) > 1 or (targets and args.quality is not None):
        raise UsageError("give one of --quality, --target-bytes, --target-bpp and --target-psnr")
    if args.quality is not None and not math.isfinite(args.quality):
        raise UsageError("--quality must be a number")
    if args.weights:
        model = load_model(args.weights)
        if args.model and args.model != model.config.name:
            raise UsageError(f"--model {args.model} but {args.weights} holds {model.config.name}")
        lmbda, metric = training_tradeoff(args.weights)
        header_metric = "custom"
        if model.config.variable_rate:
            quality = model.config.quality_range[1] if args.quality is None else args.quality
        else:
            quality = args.quality or 0
            if quality != int(quality) or not 0 <= quality <= 255:
                raise UsageError("--quality with one-rate --weights is a label, a whole number 0-255")
    else:
        entry = zoo.find(args.model or DEFAULT_MODEL, args.quality, args.metric)
        model, header_metric, lmbda, metric = zoo.load(entry), entry.metric, entry.lmbda, entry.metric
        quality = entry.high if args.quality is None else args.quality
    if model.config.variable_rate:
        try:
            model.check_quality(quality)
        except ValueError as exc:
            raise UsageError(f"--{exc}") from None
        lmbda = model.rate_lambda(quality) if lmbda is None else lmbda
    elif targets:
        raise UsageError("--target-bytes, --target-bpp and --target-psnr need variable-rate weights")
    model.transform_precision = args.precision
    lmbda = args.refine_lambda or lmbda
    if args.refine and lmbda is None:
        raise UsageError(f"{args.weights} does not record its lambda: give --refine-lambda")
    search = {"refine": args.refine, "lmbda": lmbda, "search_metric": metric or "mse"}
    return model, quality, header_metric, search


def _cmd_compress(args) -> int:
    from ..io.container import check_tile

    _set_threads(args.threads)
    check_precision(args.precision)
    try:
        check_tile(args.tile)
    except ValueError as exc:
        raise UsageError(f"--{exc}") from None
    inputs, outputs = _plan_outputs(args, ".mlic")
    return _run_batch(args, inputs, outputs, "compress", _compressor)


def _compressor(args, bar: bool):
    """``one(src, dst) -> summary`` for compress (the options checked, the model loaded);
    ``bar``: a progress bar over each photo's work."""
    from ..codec import compress_image
    from ..io.files import atomic_write
    from ..io.image import read_image
    from ..io.metadata import parse_keep

    try:
        keep = parse_keep(args.metadata)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    model, quality, metric, search = _encoder_model(args)

    target_psnr = getattr(args, "target_psnr", None)
    for name in ("target_bytes", "target_bpp"):
        value = getattr(args, name, None)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number")
    if target_psnr is not None and not (math.isfinite(target_psnr) and target_psnr > 0):
        raise UsageError("--target-psnr must be a positive number of dB")

    def one(src: Path, dst: Path) -> str:
        image = read_image(src)
        if image.frames > 1:
            if args.strict:
                raise MlicError(f"{src}: has {image.frames} frames; mlic codes still images (drop --strict to code "
                                "the first frame)")  # fmt: skip
            print(f"mlic: note: {src} has {image.frames} frames; only the first is coded", file=sys.stderr)
        image.metadata = {k: v for k, v in image.metadata.items() if k in keep}
        reached = ""
        if args.target_bytes is not None or args.target_bpp is not None or target_psnr is not None:
            from ..target import compress_to_target

            size = args.target_bytes
            if args.target_bpp is not None:
                size = math.floor(args.target_bpp * image.height * image.width / 8)
            options = dict(search)
            if args.refine_lambda is None:
                options["lmbda"] = None  # the codec takes each quality's own lambda
            with WorkBar(src.name, bar) as work:  # each trial encode runs the bar again
                found = compress_to_target(model, image, target_bytes=size, target_psnr=target_psnr, metric=metric,
                                           tile=args.tile, verify=args.verify, progress=work.callback(), **options)  # fmt: skip
            data = found.data
            reached = f"quality {found.quality:g}" + (f", {found.psnr:.2f} dB" if found.psnr is not None else "")
            reached += f" ({found.encodes} encode{'s' if found.encodes > 1 else ''}{'; ' + found.note if found.note else ''}), "
        else:
            with WorkBar(src.name, bar) as work:
                data = compress_image(model, image, quality=quality, metric=metric, tile=args.tile, verify=args.verify,
                                      progress=work.callback(), **search)  # fmt: skip
            if model.config.variable_rate:
                reached = f"quality {model.check_quality(quality):g}, "
        atomic_write(dst, lambda f: f.write(data), force=args.force)
        bpp = 8 * len(data) / (image.height * image.width)
        return reached + f"{len(data):,} bytes, {bpp:.4f} bpp" + (", verified" if args.verify else "")

    return one


# -- decompress -------------------------------------------------------------------
def _decoder_model(header, weights: str | None, precision: str, cache: dict):
    from .. import zoo
    from ..codec import ModelMismatchError
    from ..io.weights import load_model

    if weights:
        key = "user"
        if key not in cache:
            cache[key] = load_model(weights)
    else:
        entry = zoo.by_tag(header.model, header.weights_hash)
        if entry is None:
            old = zoo.retired(header.model, header.weights_hash)
            if old is not None:
                earlier = "an earlier version of " if any(e.file == old["file"] for e in zoo.entries()) else ""
                raise ModelMismatchError(
                    f"file needs {earlier}the {header.model} weights {old['file']} (sha256 {old['sha256'][:16]}...), "
                    f"bundled until {old['bundled_until']} and no longer shipped; pass them with --weights PATH "
                    "(they are in the project's git history under src/mlic/weights/)"
                )
            raise ModelMismatchError(
                f"file needs {header.model} weights {header.weights_hash.hex()}, which are not bundled; pass --weights PATH"
            )
        key = entry.file
        if key not in cache:
            cache[key] = zoo.load(entry)
    cache[key].transform_precision = precision
    return cache[key]


def _read_mlic(path: Path) -> bytes:
    from ..io.files import check_input_file

    check_input_file(path, MlicError)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MlicError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _cmd_decompress(args) -> int:
    _set_threads(args.threads)
    check_precision(args.precision)
    inputs, outputs = _plan_outputs(args, ".png")
    return _run_batch(args, inputs, outputs, "decompress", _decompressor)


def _decompressor(args, bar: bool):
    """``one(src, dst) -> summary`` for decompress (models loaded as files need them)."""
    from ..codec import decompress_file
    from ..io.container import unpack
    from ..io.image import write_png

    cache: dict = {}

    def one(src: Path, dst: Path) -> str:
        f = unpack(_read_mlic(src))
        model = _decoder_model(f.header, args.weights, args.precision, cache)
        with WorkBar(src.name, bar) as work:
            image = decompress_file(f, model, progress=work.callback())
        write_png(dst, image, force=args.force)
        return f"{image.width}x{image.height} {image.layout}"

    return one


# -- info, zoo --------------------------------------------------------------------
def _cmd_info(args) -> int:
    from ..io.container import FormatError, peek, unpack
    from ..io.metadata import icc_description

    data = _read_mlic(Path(args.file))
    try:
        f = unpack(data)
        intact = True
    except FormatError:
        f = None
        intact = False
    shown = f or peek(data)  # the header and metadata; still raises on a hopeless header
    header = shown.header
    info = {
        "file": args.file,
        "bytes": len(data),
        "intact": intact,
        "format_version": header.version,
        "model": header.model,
        "metric": header.metric,
        "quality": header.quality,
        "weights_hash": header.weights_hash.hex(),
        "width": header.width,
        "height": header.height,
        "layout": header.layout,
        "bit_depth": header.bit_depth,
        "alpha": ["none", "opaque", "stored"][header.alpha],
        "tile": header.tile,
        "tiles": len(header.tiles()),
        "check_group": header.check_group,
        "bpp": 8 * len(data) / (header.width * header.height),
    }
    icc = shown.metadata.get("icc")
    info["icc_profile"] = (icc_description(icc) or "unnamed") + f" ({len(icc):,} bytes)" if icc else "none"
    info["metadata"] = ", ".join(f"{k} {len(v):,} bytes" for k, v in shown.metadata.items()) or "none"
    if f:
        info["z_bytes"] = sum(len(t.z) for t in f.tiles)
        info["y_bytes"] = sum(len(t.y) for t in f.tiles)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(k) for k in info)
        for k, v in info.items():
            print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    return EXIT_OK if intact else EXIT_INPUT


def _cmd_zoo(args) -> int:
    from .. import zoo
    from ..models.registry import MODELS

    bundled = zoo.entries()
    print(f"{'model':<15} {'quality':>9} {'metric':<8} {'lambda':>15}  weights")
    for e in bundled:
        if e.variable_rate:
            q, lam = f"{e.low:g}-{e.high:g}", f"{e.lambdas[0]:.4f}-{e.lambdas[-1]:.4f}" if e.lambdas else "-"
        else:
            q, lam = f"{e.low:g}", f"{e.lmbda:.4f}"
        print(f"{e.model:<15} {q:>9} {e.metric:<8} {lam:>15}  {e.file}")
    if any(e.variable_rate for e in bundled):
        print("variable-rate weights take any quality in their range (real numbers, in steps of 1/256)")
    if not bundled:
        print("(no bundled weights yet: use --weights PATH with weights from `mlic convert-official`)")
    print(f"architectures: {', '.join(sorted(MODELS))}")
    return EXIT_OK


def _cmd_convert_official(args) -> int:
    from ..io import save_model
    from ..official import load_official_checkpoint

    out = Path(args.output)
    if out.exists() and not args.force:
        raise MlicError(f"{out} exists; use --force to overwrite")
    model = load_official_checkpoint(args.checkpoint)
    save_model(model, out, {"source": f"official MLIC++ checkpoint {Path(args.checkpoint).name}"})
    cfg = model.config
    n = sum(p.numel() for p in model.parameters())
    print(f"{out}: mlic-plusplus ({'legacy' if cfg.legacy else 'current'} LRP/g_s, N={cfg.N}, M={cfg.M}, {n:,} parameters)")
    return EXIT_OK


def _variable_rate_levels(spec: str, metric: str) -> dict:
    """``"2-6"`` -> the model overrides of a variable-rate model over those ladder qualities."""
    from ..models.loss import MSE_LAMBDAS, MSSSIM_LAMBDAS

    ladder = MSE_LAMBDAS if metric == "mse" else MSSSIM_LAMBDAS
    low, _, high = spec.partition("-")
    try:
        low, high = int(low), int(high)
    except ValueError:
        low = high = 0
    if not 1 <= low < high <= len(ladder):
        raise UsageError(f"--variable-rate takes LOW-HIGH, two qualities in 1-{len(ladder)} (e.g. 2-6), not {spec!r}")
    return {"rate_lambdas": list(ladder[low - 1 : high]), "first_quality": low, "z_gains": True}


def _cmd_train(args) -> int:
    cfg = train_config(args)
    from ..train.loop import train

    last = train(cfg, resume=args.resume, progress=not args.quiet)
    print(f"checkpoint: {last}")
    return EXIT_OK


def train_config(args):
    """The run ``mlic train`` asks for (a checked ``TrainConfig``): what the options say, the
    dataclass's defaults for the rest, or the saved run's configuration with ``--resume``."""
    from ..train.config import TrainConfig

    check_precision(args.precision)
    overrides = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        if not value:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    if args.variable_rate is not None:
        if args.lmbda is not None or args.quality is not None:
            raise UsageError("--variable-rate trains every level of its range: drop --lambda / --quality")
        overrides.update(_variable_rate_levels(args.variable_rate, args.metric))
    elif args.lmbda is not None and args.quality is not None:
        raise UsageError("give --lambda or --quality, not both")
    elif args.lmbda is None and args.quality is None and not args.resume:
        raise UsageError("give --lambda, --quality or --variable-rate")
    lmbda = args.lmbda
    if args.quality is not None:
        from ..models.loss import MSE_LAMBDAS, MSSSIM_LAMBDAS

        ladder = MSE_LAMBDAS if args.metric == "mse" else MSSSIM_LAMBDAS
        if not 1 <= args.quality <= len(ladder):
            raise UsageError(f"--quality must be 1-{len(ladder)}")
        lmbda = ladder[args.quality - 1]
    cfg = TrainConfig(
        data=args.data, out=args.out, model=args.model, model_overrides=overrides, metric=args.metric,
        lmbda=lmbda or 0.0, steps=TrainConfig.steps if args.steps is None else args.steps, batch=args.batch, crops=args.crop, lr=args.lr, aux_lr=args.aux_lr, warmup=args.warmup,
        z_warmup=args.z_warmup, revive_z=args.revive_z, train_only=args.train_only or "",
        lr_drops=args.lr_drops, seed=args.seed, precision=args.precision, threads=args.threads or 0,
        checkpoint_every=args.checkpoint_every, validate_every=args.validate_every, val_data="" if args.val in (None, "", "none") else args.val,
        val_images=args.val_images, log_every=args.log_every, max_side=args.max_side,
        pyramid=args.pyramid, crop_candidates=args.crop_candidates,
        downscale_jpeg=not args.keep_jpeg_size, init=args.init or "", deterministic=args.deterministic, compile=args.compile,
        max_seconds=args.max_minutes * 60,
    )  # fmt: skip
    if args.resume:
        from ..train.loop import load_checkpoint

        saved = TrainConfig.from_dict(load_checkpoint(Path(args.out) / "last.ckpt")["config"])
        saved.out = args.out
        saved.data = list(args.data)  # the same data may sit at another path (another machine)
        if args.steps is not None:  # a resumed run may be extended
            saved.steps = args.steps
        saved.max_seconds = args.max_minutes * 60  # each leg has its own time budget
        saved.compile = args.compile  # and its own machine
        cfg = saved
    try:
        cfg.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return cfg


def _cmd_export(args) -> int:
    from ..train import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.output, force=args.force)
    print(f"{out}: inference weights (+ {out.with_suffix('.json').name})")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from ..io.container import DEFAULT_TILE, MAX_TILE, PAD  # torch-free
    p = _Parser(prog="mlic", description="MLIC, MLIC+ and MLIC++ learned image codecs.")
    p.add_argument("--version", action="version", version=f"mlic {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    c = sub.add_parser("compress", help="compress images to .mlic files",
                       description="Compress PNG, JPEG, WebP, TIFF or BMP images to .mlic files.")  # fmt: skip
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="image files")
    c.add_argument("-o", "--output", help="output file (one input) or existing directory (default: INPUT.mlic)")
    c.add_argument("--model", help=f"model family (default {DEFAULT_MODEL})")
    c.add_argument("--quality", type=float,
                   help="quality, a real number in the bundled range shown by `mlic zoo` (default: the highest)")
    c.add_argument("--target-bytes", type=int, metavar="N",
                   help="search the quality for the largest file of at most N bytes (lands within 7 %% under it)")
    c.add_argument("--target-bpp", type=float, metavar="B", help="as --target-bytes, in bits per pixel")
    c.add_argument("--target-psnr", type=float, metavar="P",
                   help="search the quality for the smallest file whose PSNR-RGB is at least P dB")
    c.add_argument("--metric", default="mse", choices=("mse", "ms-ssim"), help="bundled model's training metric")
    c.add_argument("--weights", help="weights file (.safetensors) instead of a bundled model")
    c.add_argument("--tile", type=int, default=DEFAULT_TILE,
                   help=f"code larger images in tiles of this many pixels (multiple of {PAD}, at most {MAX_TILE}; "
                        "default %(default)s)")
    c.add_argument("--verify", action="store_true", help="decode each result again and check it is exact")
    c.add_argument("--metadata", default="icc", metavar="WHAT",
                   help="what travels besides the pixels: none, all, or a comma-separated list of icc (the "
                        "colour profile), exif (orientation then 1, as it is applied to the pixels), xmp "
                        "(default icc)")
    c.add_argument("--strict", action="store_true",
                   help="refuse animated and multi-page inputs (exit 2) instead of coding their first frame")
    c.add_argument("--refine", type=step_count, default=0, metavar="STEPS",
                   help="encoder-side latent search: STEPS gradient steps per tile (slower encoding, "
                        "smaller files at equal quality; any decoder reads them)")
    c.add_argument("--refine-lambda", type=float, metavar="LAMBDA",
                   help="trade-off for --refine (default: the one the weights were trained for)")
    c.add_argument("--force", action="store_true", help="overwrite existing outputs")
    add_batch_options(c)
    add_precision(c)
    c.set_defaults(func=_cmd_compress)

    d = sub.add_parser("decompress", help="decompress .mlic files to PNG",
                       description="Decompress .mlic files to PNG in the original size, channel layout and bit depth.")  # fmt: skip
    d.add_argument("inputs", nargs="+", metavar="INPUT", help=".mlic files")
    d.add_argument("-o", "--output", help="output file (one input) or existing directory (default: INPUT.png)")
    d.add_argument("--weights", help="weights file, when the file's model is not bundled")
    d.add_argument("--force", action="store_true", help="overwrite existing outputs")
    add_batch_options(d)
    add_precision(d)
    d.set_defaults(func=_cmd_decompress)

    i = sub.add_parser("info", help="print the header of a .mlic file", description="Print the header of a .mlic file.")
    i.add_argument("file", help=".mlic file")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=_cmd_info)

    z = sub.add_parser("zoo", help="list bundled models and qualities", description="List bundled models and qualities.")
    z.set_defaults(func=_cmd_zoo)

    from ..train.config import TrainConfig  # torch-free: the defaults below are the dataclass's

    D = TrainConfig()
    t = sub.add_parser("train", help="train a model on image folders",
                       description="Train (or resume) a model with the rate-distortion loss; runs under torchrun "
                       "for data-parallel training (gloo on CPU, NCCL on GPUs).")  # fmt: skip
    t.add_argument("data", nargs="+", help="folders of PNG, JPEG or WebP images (searched recursively)")
    t.add_argument("--out", required=True, help="run folder (checkpoints, log.csv, config.json)")
    t.add_argument("--model", default=D.model, help=f"model family (default {D.model})")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a model config field, e.g. --set N=64")
    t.add_argument("--metric", default=D.metric, choices=("mse", "ms-ssim"))
    t.add_argument("--lambda", dest="lmbda", type=float, help="rate-distortion trade-off")
    t.add_argument("--quality", type=int, help="1-6: lambda from the spec's ladder for --metric")
    t.add_argument("--variable-rate", nargs="?", const="2-6", metavar="LOW-HIGH",
                   help="one model for the ladder qualities LOW-HIGH (default 2-6) with gain units; each "
                        "image of a batch trains at a random level")
    t.add_argument("--steps", type=int, help=f"total optimisation steps (default {D.steps}; with --resume: as saved)")
    t.add_argument("--batch", type=int, default=D.batch, help="global batch size (default %(default)s)")
    t.add_argument("--crop", default=D.crops, help="crop schedule, e.g. 256 or 256,512@0.8 (default %(default)s)")
    t.add_argument("--lr", type=float, default=D.lr, help="Adam learning rate (default %(default)s)")
    t.add_argument("--aux-lr", type=float, default=D.aux_lr,
                   help="Adam learning rate of the bottleneck quantiles (default %(default)s)")
    t.add_argument("--warmup", type=int, default=D.warmup, help="linear warm-up steps (default %(default)s)")
    t.add_argument("--z-warmup", type=int, default=D.z_warmup,
                   help="steps over which the z rate's pull on the encoder rises from 0 to full (keeps the "
                        "hyperprior alive; 0 = full from the start)")
    t.add_argument("--lr-drops", default=D.lr_drops,
                   help="FRACTION:FACTOR of the base LR, comma-separated (default %(default)s)")
    t.add_argument("--seed", type=int, default=D.seed, help="data order and initialisation (use a new one with --init)")
    add_precision(t)
    t.add_argument("--threads", type=thread_count, help="CPU threads per process")
    t.add_argument("--checkpoint-every", type=int, default=D.checkpoint_every, help="steps (default %(default)s; 0: none)")
    t.add_argument("--validate-every", type=int, default=D.validate_every, help="steps (default %(default)s)")
    t.add_argument("--val", default=os.environ.get("MLIC_VAL"),
                   help="validation folder (default: $MLIC_VAL; none: no validation)")
    t.add_argument("--val-images", type=int, default=D.val_images, help="validation images compressed for real")
    t.add_argument("--log-every", type=int, default=D.log_every, help="steps between rows of log.csv")
    t.add_argument("--max-side", type=int, default=D.max_side,
                   help="downsample larger sources 2x (repeatedly) below this side (0: never)")
    t.add_argument("--keep-jpeg-size", action="store_true", help="do not downsample JPEG sources 2x on loading")
    t.add_argument("--pyramid", type=int, default=D.pyramid, help="also train on each source at 1/2, 1/4, ... (levels in all)")
    t.add_argument("--crop-candidates", type=int, default=D.crop_candidates,
                   help="crop positions drawn per item; the most detailed is kept (1 = uniform crops)")
    t.add_argument("--init", help="start from these weights (.safetensors or checkpoint), e.g. to fine-tune")
    t.add_argument("--revive-z", action="store_true",
                   help="with --init: restart the weights' dead z channels first (use with --z-warmup)")
    t.add_argument("--train-only", metavar="MODULES",
                   help="with --init: train only these comma-separated modules (e.g. g_a: the encoder alone, "
                        "for the same decoder); the rest stays frozen")
    t.add_argument("--max-minutes", type=float, default=D.max_seconds / 60,
                   help="stop and save once this much wall time has passed (default: run every step)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from last.ckpt")
    t.add_argument("--deterministic", action="store_true", help="torch deterministic algorithms")
    t.add_argument("--compile", action="store_true",
                   help="torch.compile the model for training (for CUDA; minutes of compiling first; "
                        "scripts/device-train measures whether it pays)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("export", help="export inference weights from a training checkpoint",
                       description="Write inference weights (tables built, no optimiser state) with their "
                       "configuration and SHA-256, plus a JSON file beside them.")  # fmt: skip
    e.add_argument("checkpoint", help="training checkpoint (.ckpt)")
    e.add_argument("-o", "--output", required=True, help="output .safetensors file")
    e.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    e.set_defaults(func=_cmd_export)

    v = sub.add_parser(
        "convert-official",
        help="convert an official MLIC++ checkpoint to mlic safetensors weights",
        description="Read an official MLIC++ checkpoint (.pth.tar, read with weights_only=True), detect "
        "its variant (legacy 2023 or current LRP/g_s), rebuild coding tables and write mlic weights.",
    )
    v.add_argument("checkpoint", help="official checkpoint file")
    v.add_argument("-o", "--output", required=True, help="output .safetensors file")
    v.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    v.set_defaults(func=_cmd_convert_official)

    from .evaluate import add_commands

    add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"mlic: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader of our output went away (`mlic info F | head -1`): as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit flush must not fail too
        return EXIT_BROKEN_PIPE
    except (MlicError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        if isinstance(exc, OSError) and exc.strerror:
            where = f"{exc.filename}: " if exc.filename else ""
            exc = f"{where}{exc.strerror}"
        print(f"mlic: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("mlic: interrupted", file=sys.stderr)
        return EXIT_INTERRUPT
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback with --debug
        if args.debug:
            traceback.print_exc()
        print(f"mlic: error: internal error ({type(exc).__name__}: {exc}); "
              "please report it with the output of `mlic --debug ...`", file=sys.stderr)  # fmt: skip
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
