"""The training loop: one process or many (``torchrun``), resumable, interrupt-safe.

Per step (architecture.md §8.3): zero both optimisers; rate-distortion loss
backward; clip the global gradient norm of the model parameters; main Adam step;
auxiliary (quantile) loss backward; auxiliary Adam step. Quantiles are only in
the auxiliary optimiser.

Checkpoints (``OUT/last.ckpt``, plus ``OUT/step-N.ckpt`` every
``checkpoint_every`` steps) hold the model, both optimisers, the step, the RNG
state and the configuration; they load with ``torch.load(weights_only=True)``.
SIGINT and SIGTERM save a checkpoint before exiting. Only rank 0 writes files.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist

from .._torch_internals import ddp_ignore
from ..errors import MlicError
from ..io.files import atomic_write
from ..io.tensor import rgb_to_tensor
from ..io.weights import load_model, safe_torch_load, save_model, training_tradeoff
from ..models import MLIC, build
from ..models.health import MIN_ACTIVE_Z, rate_health
from ..models.loss import RateDistortionLoss
from .config import TrainConfig
from .data import CropStream, find_images, load_rgb
from .widen import can_widen, widen_transforms

CKPT_FORMAT = "mlic-train-1"


class TrainError(MlicError):
    """A training run cannot start or resume."""


def _dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _atomic_save(obj, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f), force=True)


def load_checkpoint(path: str | Path) -> dict:
    ckpt = safe_torch_load(path, TrainError, "training checkpoint")
    if ckpt.get("format") != CKPT_FORMAT:
        raise TrainError(f"{path}: not an mlic training checkpoint")
    return ckpt


def model_from_checkpoint(ckpt: dict) -> MLIC:
    cfg = TrainConfig.from_dict(ckpt["config"])
    model = build(cfg.model, **cfg.model_overrides)
    model.load_state_dict(ckpt["model"], strict=True)
    return model


def export_checkpoint(ckpt_path: str | Path, out: str | Path, force: bool = False) -> Path:
    """Inference weights from a checkpoint: the bottleneck's quantiles settled on its density
    (:meth:`EntropyBottleneck.fit_quantiles`), tables built, no optimiser state, config and
    SHA-256 in the safetensors metadata and in a ``.json`` file beside it."""
    out = Path(out)
    side = out.with_suffix(".json")
    if not force and (out.exists() or side.exists()):
        raise TrainError(f"{out} exists; use --force to overwrite")
    ckpt = load_checkpoint(ckpt_path)
    cfg = TrainConfig.from_dict(ckpt["config"])
    model = model_from_checkpoint(ckpt).eval()
    model.entropy_bottleneck.fit_quantiles()  # the tables' range follows the final density
    model.update(force=True)
    meta = {"metric": cfg.metric, "steps": str(ckpt["step"]), "source": Path(ckpt_path).name}
    if not model.config.variable_rate:  # a variable-rate model's lambdas are in its configuration
        meta["lambda"] = str(cfg.lmbda)
    save_model(model, out, meta)
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as f:
        recorded = f.metadata()
    info = {"model": model.config.name, "config": model.config.to_dict(), "sha256": recorded["sha256"],
            "lambda": None if model.config.variable_rate else cfg.lmbda, "metric": cfg.metric,
            "steps": ckpt["step"]}  # fmt: skip
    atomic_write(side, lambda f: f.write((json.dumps(info, indent=2) + "\n").encode()), force=True)
    return out


def _initial_weights(model: MLIC, path: str) -> None:
    """Load ``path`` into ``model``. Weights with fewer gain units may start a variable-rate
    model: one-rate weights start every level, with gains ``sqrt(lambda_level / lambda_weights)``
    (:func:`initial_gains`); variable-rate weights without z gains start them at 1. Weights with
    narrower g_a / g_s start a wider model (:func:`~mlic.train.widen.widen_transforms`)."""
    if path.endswith(".safetensors"):
        src = load_model(path)
        src_lambda = training_tradeoff(path)[0]
    else:
        ckpt = load_checkpoint(path)
        src = model_from_checkpoint(ckpt)
        src_lambda = TrainConfig.from_dict(ckpt["config"]).lmbda
    a, b = src.config.replace(name=model.config.name), model.config
    if a == b:
        model.load_state_dict(src.state_dict(), strict=True)
        return
    gain_names = {"log_gain", "log_inverse_gain", "log_z_gain", "log_z_inverse_gain"}
    if b.variable_rate and not a.z_gains and (not a.variable_rate or a.rate_lambdas == b.rate_lambdas) and \
            a.replace(rate_lambdas=b.rate_lambdas, first_quality=b.first_quality, z_gains=b.z_gains) == b:
        missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
        assert set(missing) <= gain_names and not unexpected, (missing, unexpected)
        if not a.variable_rate:
            if src_lambda is None:
                raise TrainError(f"{path} does not record its lambda, which sets the initial gains")
            initial_gains(model, src_lambda)
        return
    if can_widen(a, b):
        widen_transforms(model, src)
        return
    raise TrainError(f"{path}: architecture differs from the configured model")


@torch.no_grad()
def initial_gains(model: MLIC, lmbda: float) -> None:
    """Gains for a variable-rate model started from one-rate weights trained at ``lmbda``:
    level l scales every channel by ``sqrt(lambda_l / lmbda)`` (a uniform quantiser's best step
    shrinks as 1 / sqrt(lambda)), the inverse gains undo it exactly."""
    for level, lam in enumerate(model.config.rate_lambdas):
        model.log_gain[level].fill_(0.5 * math.log(lam / lmbda))
    model.log_inverse_gain.copy_(-model.log_gain)


def draw_qualities(model: MLIC, step: int, batch: int, seed: int, rank: int) -> torch.Tensor:
    """One whole quality per image of a variable-rate training batch, uniform over the levels;
    reproducible from (seed, step, rank), so a resumed run draws what it would have drawn."""
    gen = torch.Generator().manual_seed((seed * 1_000_003 + step) * 64 + rank)
    low, high = model.config.quality_range
    return torch.randint(low, high + 1, (batch,), generator=gen).float()


@torch.no_grad()
def validate(model: MLIC, folder: str, n_real: int, criterion: RateDistortionLoss, device) -> dict:
    """Estimated bpp / PSNR (eval forward) and real coded bpp on the first ``n_real`` images."""
    files = find_images([folder])[: max(n_real, 1)]
    model.eval()
    model.update(force=True)
    quality = None
    if model.config.variable_rate:  # the middle of the range
        low, high = model.config.quality_range
        quality = (low + high) / 2
        criterion = RateDistortionLoss(model.rate_lambda(quality), criterion.metric)
    est_bpp = est_psnr = real_bpp = 0.0
    for path in files:
        x = rgb_to_tensor(load_rgb(path, downscale_jpeg=False)).to(device)
        out = model(x, quality)
        r = criterion(out, x)
        est_bpp += r["bpp"].item()
        est_psnr += r["psnr"].item()
        enc = model.compress(x, quality=quality)
        real_bpp += 8 * sum(len(s) for ss in enc["strings"] for s in ss) / (x.shape[-2] * x.shape[-1])
    n = len(files)
    model.train()
    return {"val_bpp_est": est_bpp / n, "val_psnr": est_psnr / n, "val_bpp_real": real_bpp / n}


class CollapseWatch:
    """Warns (once per run, on stderr) when the hyperprior collapses: fewer than
    ``MIN_ACTIVE_Z`` of the z channels active in each of the last ``window`` logged batches.
    One batch of small crops can leave a live channel at zero, so a single reading never warns."""

    def __init__(self, bar=None, window: int = 5) -> None:
        self.window, self.bar = window, bar
        self.low = 0  # logged batches in a row with too few active channels
        self.warned = False

    def see(self, step: int, health) -> bool:
        """Record one logged batch; returns True when it warns."""
        collapsed = health.active_z < MIN_ACTIVE_Z * health.z_channels
        self.low = self.low + 1 if collapsed else 0
        if self.warned or self.low < self.window:
            return False
        self.warned = True
        msg = (f"mlic train: warning: at step {step} the hyperprior has collapsed: {health.active_z} of "
               f"{health.z_channels} z channels active over the last {self.window} logged batches; slice 0 "
               "is then coded with fixed scales (docs/models.md, 'Entropy-model health')")  # fmt: skip
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr)
        return True


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, callback=None) -> Path:
    """Run (or resume) training; returns the path of the last checkpoint.

    ``callback(step, stats)``, if given, is called after every step (rank 0 and others).
    """
    cfg.validate()
    started = time.perf_counter()
    # inputs are checked before anything is built or written: no run folder for a bad call
    data = CropStream(cfg.data, seed=cfg.seed, downscale_jpeg=cfg.downscale_jpeg, max_side=cfg.max_side,
                      pyramid=cfg.pyramid, candidates=cfg.crop_candidates)
    if cfg.val_data:
        find_images([cfg.val_data])  # a missing or empty validation folder fails now, not at step 1000
    with _processes(cfg) as (rank, world, device):
        return _run(cfg, data, resume, progress, callback, started, rank, world, device)


def _run(cfg: TrainConfig, data: CropStream, resume: bool, progress: bool, callback, started: float,
         rank: int, world: int, device: torch.device) -> Path:  # fmt: skip
    out = Path(cfg.out)
    last = out / "last.ckpt"
    model = _starting_model(cfg, data, resume, rank)
    model.to(device).train()
    opt = _Optimisers(model, cfg)
    step = _restore(last, model, opt, rank) if resume else _seed_rank(cfg, rank)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    net = _data_parallel(model, world, device)
    if cfg.compile:  # the forward (and so its backward) compiled; the optimisers and logging stay eager
        net = torch.compile(net)
    criterion = RateDistortionLoss(cfg.lmbda, cfg.metric)
    checkpoints = _Checkpoints(cfg, model, opt, out, rank, world, device)
    log = _RunLog(out, cfg, rank, resume, progress, step)
    stop = _StopOnSignal()
    try:
        while step < cfg.steps and not stop.flag:
            result, output, aux = _train_step(model, net, opt, criterion, data, cfg, step, rank, world, device)
            step += 1
            stats = torch.stack([result["loss"].detach(), result["bpp"].detach(), result["mse"].detach()]).float()
            if world > 1:
                dist.all_reduce(stats)
                stats /= world
            if rank == 0:
                log.step(step, stats, aux, model, output, criterion, device)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                checkpoints.save(step)
            if callback is not None:
                callback(step, stats)
            if cfg.max_seconds and time.perf_counter() - started >= cfg.max_seconds:
                stop.flag = True  # out of time: save where we are (all ranks agree below)
            stop.agree(world, device)
        checkpoints.save(step)
    finally:
        stop.restore()
        log.close()
    return last


@contextmanager
def _processes(cfg: TrainConfig):
    """(rank, world size, device) for the run inside: joins the process group under torchrun,
    sets threads and determinism, and leaves the group it joined when the run ends (after a
    finished run, once every rank is done with it). Without leaving, gloo's worker threads can
    outlive the interpreter at exit and abort the process (SIGABRT, "terminate called without
    an active exception") now and then after a run that succeeded (pytorch/pytorch#190489)."""
    rank, world, local_rank = _dist_env()
    joined = world > 1 and not dist.is_initialized()
    if joined:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        yield rank, world, device
    except BaseException:
        if joined:
            dist.destroy_process_group()
        raise
    if joined:
        dist.barrier()
        dist.destroy_process_group()


def _starting_model(cfg: TrainConfig, data: CropStream, resume: bool, rank: int) -> MLIC:
    """The model as the run starts: seeded initialisation (the same on every rank), or ``--init``
    weights (with dead z channels revived on request); the modules ``--train-only`` leaves out are
    frozen; a resumed run loads its checkpoint later."""
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = build(cfg.model, **cfg.model_overrides)
    model.transform_precision = cfg.precision
    if cfg.init and not resume:
        _initial_weights(model, cfg.init)
        if cfg.revive_z:
            from .revive import revive_hyperprior

            probe = [data.batch(10**9 + k, 8, 256) for k in range(4)]  # not among the run's own batches
            dead = revive_hyperprior(model, probe)
            if rank == 0:
                print(f"mlic train: revived {len(dead)} of {model.N} z channels (dead on {len(probe)} x 8 crops)",
                      file=sys.stderr)  # fmt: skip
    freeze(model, cfg.trained_names())  # a resumed run freezes the same modules
    return model


class _Optimisers:
    """Adam on the model's parameters that train (all but those ``--train-only`` froze) and a
    separate Adam on the bottleneck's quantiles (the only parameters of the auxiliary loss)."""

    def __init__(self, model: MLIC, cfg: TrainConfig) -> None:
        self.main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles") and p.requires_grad]
        aux_params = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
        self.main = torch.optim.Adam(self.main_params, lr=cfg.lr)
        self.aux = torch.optim.Adam(aux_params, lr=cfg.aux_lr)


def freeze(model: MLIC, names: list[str]) -> None:
    """Train only the top-level modules or parameters ``names`` (all when empty): every other
    parameter stops requiring gradients, so the backward pass skips its weight gradients. The
    bottleneck's quantiles (the auxiliary loss) always train: they only fit the z tables."""
    if not names:
        return
    top = {n.split(".")[0] for n, _ in model.named_parameters()}
    unknown = [n for n in names if n not in top]
    if unknown:
        raise TrainError(f"--train-only: {model.config.name} has no module {unknown[0]!r} (it has {', '.join(sorted(top))})")
    for n, p in model.named_parameters():
        p.requires_grad_(n.split(".")[0] in names or n.endswith("quantiles"))


def _restore(last: Path, model: MLIC, opt: _Optimisers, rank: int) -> int:
    """Load the run's last checkpoint (model, optimisers, this rank's RNG); returns its step."""
    ckpt = load_checkpoint(last)
    model.load_state_dict(ckpt["model"], strict=True)
    opt.main.load_state_dict(ckpt["optimizer"])
    opt.aux.load_state_dict(ckpt["aux_optimizer"])
    torch.set_rng_state(ckpt["rng"][rank] if rank < len(ckpt["rng"]) else ckpt["rng"][0])
    return int(ckpt["step"])


def _seed_rank(cfg: TrainConfig, rank: int) -> int:
    torch.manual_seed(cfg.seed * 1009 + rank)  # quantisation noise differs per rank
    return 0


def _data_parallel(model: MLIC, world: int, device: torch.device):
    """The module the steps call: the model itself, or its DDP wrapper under torchrun."""
    if world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    # quantiles get no gradient from the RD loss; the aux loss is identical on every rank
    ddp_ignore(model, ["entropy_bottleneck.quantiles"])
    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


def _train_step(model: MLIC, net, opt: _Optimisers, criterion: RateDistortionLoss, data: CropStream,
                cfg: TrainConfig, step: int, rank: int, world: int, device) -> tuple[dict, dict, torch.Tensor]:
    """One optimisation step (module docstring): returns the loss terms, the model's output and
    the auxiliary loss."""
    for group in opt.main.param_groups:
        group["lr"] = cfg.lr_at(step)
    x = data.batch(step, cfg.batch, cfg.crop_at(step), rank, world).to(device)
    opt.main.zero_grad(set_to_none=True)
    opt.aux.zero_grad(set_to_none=True)
    model.z_rate_weight = cfg.z_weight_at(step)
    if model.config.variable_rate:
        quality = draw_qualities(model, step, x.shape[0], cfg.seed, rank)
        lambdas = torch.tensor(model.config.rate_lambdas)[quality.long() - model.config.first_quality]
        output = net(x, quality=quality.to(device))
        result = criterion(output, x, lambdas.to(device))
    else:
        output = net(x)
        result = criterion(output, x)
    result["loss"].backward()
    if cfg.clip > 0:
        torch.nn.utils.clip_grad_norm_(opt.main_params, cfg.clip)
    opt.main.step()
    aux = model.aux_loss()
    aux.backward()
    opt.aux.step()
    return result, output, aux


class _Checkpoints:
    """Writes ``last.ckpt`` (and ``step-N.ckpt`` every ``checkpoint_every`` steps) on rank 0, with
    every rank's RNG state, so that a resumed run continues exactly."""

    def __init__(self, cfg, model, opt, out, rank, world, device) -> None:
        self.cfg, self.model, self.opt, self.out = cfg, model, opt, out
        self.rank, self.world, self.device = rank, world, device

    def save(self, step: int) -> None:
        rng = [torch.get_rng_state()]
        if self.world > 1:
            gathered = [torch.empty_like(rng[0]) for _ in range(self.world)]
            dist.all_gather(gathered, rng[0].to(self.device) if self.device.type == "cuda" else rng[0])
            rng = [g.cpu() for g in gathered]
        if self.rank != 0:
            return
        ckpt = {
            "format": CKPT_FORMAT,
            "config": self.cfg.to_dict(),
            "step": step,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.opt.main.state_dict(),
            "aux_optimizer": self.opt.aux.state_dict(),
            "rng": rng,
            "world": self.world,
        }
        _atomic_save(ckpt, self.out / "last.ckpt")
        if self.cfg.checkpoint_every and step % self.cfg.checkpoint_every == 0:
            _atomic_save(ckpt, self.out / f"step-{step}.ckpt")


class _RunLog:
    """What rank 0 reports: ``log.csv`` rows (loss, health, validation), TensorBoard when it is
    installed, the progress bar, and the collapse warning. Other ranks log nothing."""

    FIELDS = ["step", "lr", "loss", "bpp", "psnr", "aux", "z_active", "y_outliers", "seconds", "val_bpp_est",
              "val_bpp_real", "val_psnr"]  # fmt: skip

    def __init__(self, out: Path, cfg: TrainConfig, rank: int, resume: bool, progress: bool, step: int) -> None:
        self.cfg = cfg
        self.file = self.writer = self.board = self.bar = None
        self.t0 = time.perf_counter()
        if rank == 0:
            path = out / "log.csv"
            new = not (resume and path.exists())
            self.file = open(path, "w" if new else "a", newline="")
            self.writer = csv.DictWriter(self.file, fieldnames=self.FIELDS)
            if new:
                self.writer.writeheader()
            try:  # TensorBoard only when it is installed
                from torch.utils.tensorboard import SummaryWriter

                self.board = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                self.board = None
            if progress:
                from tqdm import tqdm

                self.bar = tqdm(total=cfg.steps, initial=step, unit="step", dynamic_ncols=True)
        self.watch = CollapseWatch(self.bar)

    def step(self, step: int, stats: torch.Tensor, aux: torch.Tensor, model: MLIC, output: dict,
             criterion: RateDistortionLoss, device) -> None:
        """After step ``step`` (rank 0): a row every ``log_every`` steps and at the end, validation
        every ``validate_every`` steps."""
        cfg, row = self.cfg, None
        if step % cfg.log_every == 0 or step == cfg.steps:
            psnr = 10 * torch.log10(1 / stats[2].clamp_min(1e-10)).item()
            health = rate_health(model, output)
            row = {"step": step, "lr": f"{cfg.lr_at(step - 1):.3g}", "loss": f"{stats[0].item():.5f}",
                   "bpp": f"{stats[1].item():.5f}", "psnr": f"{psnr:.3f}", "aux": f"{aux.item():.3f}",
                   "z_active": health.active_z, "y_outliers": f"{health.outlier_share:.4f}",
                   "seconds": f"{time.perf_counter() - self.t0:.3f}"}  # fmt: skip
            self.watch.see(step, health)
            if self.bar is not None:
                self.bar.set_postfix(loss=row["loss"], bpp=row["bpp"], psnr=row["psnr"])
        if cfg.val_data and cfg.validate_every and step % cfg.validate_every == 0:
            row = row or {"step": step}
            row.update({k: f"{v:.5f}" for k, v in validate(model, cfg.val_data, cfg.val_images, criterion, device).items()})
        if row is not None:
            self.writer.writerow(row)
            self.file.flush()
            if self.board is not None:
                for k, v in row.items():
                    if k not in ("step", "seconds"):
                        self.board.add_scalar(k, float(v), step)
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        for thing in (self.bar, self.file, self.board):
            if thing is not None:
                thing.close()


class _StopOnSignal:
    """SIGINT / SIGTERM ask the loop to stop after the current step (and save); under torchrun a
    signal seen by any rank stops all of them at the same step."""

    def __init__(self) -> None:
        self.flag = False
        self.old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def _on_signal(self, signum, frame) -> None:
        self.flag = True

    def agree(self, world: int, device) -> None:
        if world > 1:
            flag = torch.tensor([1.0 if self.flag else 0.0], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            self.flag = bool(flag.item())

    def restore(self) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)
