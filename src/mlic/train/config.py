"""Training configuration: everything a run needs, saved in its checkpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


def parse_crops(spec: str) -> list[tuple[float, int]]:
    """``"256,512@0.8"`` -> [(0.0, 256), (0.8, 512)]: crop size from a fraction of the run on."""
    out = []
    for part in spec.split(","):
        size, _, start = part.strip().partition("@")
        out.append((float(start) if start else 0.0, int(size)))
    out.sort()
    if not out or out[0][0] != 0.0 or any(s % 64 or s <= 0 for _, s in out):
        raise ValueError("crop schedule must start at fraction 0 with sizes that are multiples of 64")
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
    lr_drops: str = "0.9:0.3,0.97:0.1"  # fraction:factor of the base LR
    clip: float = 1.0
    seed: int = 0
    precision: str = "auto"  # g_a / g_s: "fp32", "bf16", "auto"
    threads: int = 0  # 0 = leave torch's default
    checkpoint_every: int = 1000
    validate_every: int = 1000
    val_data: str = ""  # folder; default ../shared/data/kodak when present
    val_images: int = 4  # images really compressed at validation
    log_every: int = 10
    downscale_jpeg: bool = True  # JPEG sources are downsampled 2x (antialiased) on loading
    max_side: int = 0  # sources larger than this are downsampled by powers of 2 (0 = never)
    pyramid: int = 1  # each source also at 1/2, 1/4, ... of its size (levels in all)
    crop_candidates: int = 1  # crop positions drawn per item; the most detailed one is kept
    init: str = ""  # weights (.safetensors) or checkpoint to start from (fine-tuning)
    deterministic: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    def lr_at(self, step: int) -> float:
        """Learning rate for ``step`` (0-based): linear warm-up, then piecewise-constant drops."""
        lr = self.lr * min(1.0, (step + 1) / self.warmup) if self.warmup > 0 else self.lr
        for part in filter(None, self.lr_drops.split(",")):
            frac, factor = (float(v) for v in part.split(":"))
            if step >= frac * self.steps:
                lr = self.lr * factor
        return lr

    def crop_at(self, step: int) -> int:
        size = parse_crops(self.crops)[0][1]
        for start, s in parse_crops(self.crops):
            if step >= start * self.steps:
                size = s
        return size
