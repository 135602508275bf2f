"""Training configuration: everything a run needs, saved in its checkpoints."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..models.config import PRECISIONS
from ..models.registry import model_config

METRICS = ("mse", "ms-ssim")


def parse_crops(spec: str) -> list[tuple[float, int]]:
    """``"256,512@0.8"`` -> [(0.0, 256), (0.8, 512)]: crop size from a fraction of the run on."""
    out = []
    try:
        for part in spec.split(","):
            size, _, start = part.strip().partition("@")
            out.append((float(start) if start else 0.0, int(size)))
    except ValueError:
        raise ValueError(f"crop schedule {spec!r} is not SIZE[,SIZE@FRACTION...] (e.g. 256,512@0.8)") from None
    out.sort()
    if not out or out[0][0] != 0.0 or any(s % 64 or s <= 0 for _, s in out):
        raise ValueError("crop schedule must start at fraction 0 with sizes that are multiples of 64")
    return out


def parse_lr_drops(spec: str) -> list[tuple[float, float]]:
    """``"0.9:0.3,0.97:0.1"`` -> [(0.9, 0.3), (0.97, 0.1)]: from that fraction of the run on,
    the learning rate is the base rate times the factor."""
    out = []
    for part in filter(None, spec.split(",")):
        try:
            frac, factor = (float(v) for v in part.split(":"))
        except ValueError:
            raise ValueError(f"--lr-drops {spec!r}: each drop is FRACTION:FACTOR, e.g. 0.9:0.3") from None
        if not (0 <= frac <= 1 and 0 < factor and math.isfinite(factor)):
            raise ValueError(f"--lr-drops {spec!r}: fractions lie in [0, 1] and factors are positive")
        out.append((frac, factor))
    return out


@dataclass
class TrainConfig:
    """A training run (defaults: the recipe of architecture.md §8, scaled to a step budget)."""

    data: list[str] = field(default_factory=list)
    out: str = "runs/mlic"
    model: str = "mlic-plus"
    model_overrides: dict = field(default_factory=dict)
    metric: str = "mse"
    lmbda: float = 0.0130
    steps: int = 100_000
    batch: int = 8  # global batch (split across processes)
    crops: str = "256"
    lr: float = 1e-4
    aux_lr: float = 1e-3
    warmup: int = 1000  # linear warm-up steps
    z_warmup: int = 0  # steps over which the z rate's gradient into h_a / g_a rises from 0 to full (0 = full)
    lr_drops: str = "0.9:0.3,0.97:0.1"  # fraction:factor of the base LR
    clip: float = 1.0
    seed: int = 0
    precision: str = "auto"  # g_a / g_s: "fp32", "bf16", "auto"
    threads: int = 0  # 0 = leave torch's default
    checkpoint_every: int = 1000
    validate_every: int = 1000
    val_data: str = ""  # folder of validation images; "" = no validation
    val_images: int = 4  # images really compressed at validation
    log_every: int = 10
    downscale_jpeg: bool = True  # JPEG sources are downsampled 2x (antialiased) on loading
    max_side: int = 0  # sources larger than this are downsampled by powers of 2 (0 = never)
    pyramid: int = 1  # each source also at 1/2, 1/4, ... of its size (levels in all)
    crop_candidates: int = 1  # crop positions drawn per item; the most detailed one is kept
    init: str = ""  # weights (.safetensors) or checkpoint to start from (fine-tuning)
    revive_z: bool = False  # with init: restart the dead z channels first (mlic.train.revive)
    train_only: str = ""  # comma-separated top-level modules / parameters to train ("" = all); the rest is frozen
    deterministic: bool = False
    compile: bool = False  # torch.compile the training step's forward (meant for CUDA; scripts/device-train measures whether it pays)
    max_seconds: float = 0.0  # stop (and save) once this much wall time has passed; 0 = run all steps

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        """Raise ValueError, with one line saying which, for any value a run cannot use."""
        arch = model_config(self.model, **self.model_overrides)
        if not (isinstance(self.max_seconds, (int, float)) and math.isfinite(self.max_seconds) and self.max_seconds >= 0):
            raise ValueError(f"max-minutes must be a number of at least 0, not {self.max_seconds!r}")
        positive = {"lr": self.lr, "aux-lr": self.aux_lr, "clip": self.clip}
        if not arch.variable_rate:  # a variable-rate model trains at its levels' lambdas
            positive["lambda"] = self.lmbda
        for name, value in positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value!r}")
        at_least = {"steps": (self.steps, 1), "batch": (self.batch, 1), "warmup": (self.warmup, 0), "z-warmup": (self.z_warmup, 0),
                    "threads": (self.threads, 0), "checkpoint-every": (self.checkpoint_every, 0),
                    "validate-every": (self.validate_every, 0), "val-images": (self.val_images, 0),
                    "log-every": (self.log_every, 0), "max-side": (self.max_side, 0),
                    "pyramid": (self.pyramid, 1), "crop-candidates": (self.crop_candidates, 1)}  # fmt: skip
        for name, (value, low) in at_least.items():
            if not (isinstance(value, int) and value >= low):
                raise ValueError(f"{name} must be a whole number of at least {low}, not {value!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {self.metric!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        parse_crops(self.crops)
        parse_lr_drops(self.lr_drops)
        if self.revive_z and not self.init:
            raise ValueError("revive-z needs init: it restarts the dead z channels of trained weights")
        if self.train_only and not self.init:
            raise ValueError("train-only needs init: freezing untrained weights would leave them random")
        self.trained_names()

    def trained_names(self) -> list[str]:
        """The ``train_only`` names, checked for form only (the model checks that they exist)."""
        names = [n.strip() for n in self.train_only.split(",")] if self.train_only else []
        for n in names:
            if not n.isidentifier():
                raise ValueError(f"train-only takes comma-separated module names such as g_a,g_s, not {self.train_only!r}")
        return names

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    def lr_at(self, step: int) -> float:
        """Learning rate for ``step`` (0-based): linear warm-up, then piecewise-constant drops."""
        lr = self.lr * min(1.0, (step + 1) / self.warmup) if self.warmup > 0 else self.lr
        for frac, factor in parse_lr_drops(self.lr_drops):
            if step >= frac * self.steps:
                lr = self.lr * factor
        return lr

    def z_weight_at(self, step: int) -> float:
        """Share of the z rate's gradient that reaches the encoder at ``step`` (0-based): 0 -> 1 over
        ``z_warmup`` steps (``MLIC.z_rate_weight``)."""
        return min(1.0, step / self.z_warmup) if self.z_warmup > 0 else 1.0

    def crop_at(self, step: int) -> int:
        size = parse_crops(self.crops)[0][1]
        for start, s in parse_crops(self.crops):
            if step >= start * self.steps:
                size = s
        return size
