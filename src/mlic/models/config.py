"""A model's architecture as data (no torch): what is saved next to its weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

# Precisions of the transforms g_a / g_s (MLIC.transform_precision); never of the probability
# path (float32 in training, float64 when coding format version 3). "auto": bf16 where the
# hardware has native bf16 kernels, else fp32.
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class MLICConfig:
    """Everything that defines a model's architecture (saved next to its weights).

    Defaults are MLIC++ (N 192, M 320, 10 slices of 32 channels).
    """

    name: str = "mlic-plusplus"
    N: int = 192
    M: int = 320
    slices: int = 10
    local: str = "window"  # "window" (MEM+, MEM++) or "conv" (MEM)
    inter: str | None = "linear"  # "linear" (MEM++), "quadratic" (MEM+) or None (MEM)
    intra: str = "linear"  # "linear" (MEM++) or "quadratic" (MEM, MEM+)
    legacy: bool = False  # 2023 LRP and g_s (decision A5)
    channel_hidden: tuple[int, int] = (192, 128)
    params_hidden: tuple[int, ...] = (320, 256, 128)
    lrp_hidden: tuple[int, ...] = (224, 128)
    local_heads: int = 2
    intra_heads: int = 2
    intra_exclusion: int = 2
    window: int = 5

    def __post_init__(self) -> None:
        for key in ("N", "M", "slices", "local_heads", "intra_heads", "window"):
            value = getattr(self, key)
            if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
                raise ValueError(f"{key} must be a positive whole number, not {value!r}")
        if not (isinstance(self.intra_exclusion, int) and self.intra_exclusion >= 0):
            raise ValueError(f"intra_exclusion must be a whole number of at least 0, not {self.intra_exclusion!r}")
        for key in ("channel_hidden", "params_hidden", "lrp_hidden"):  # lists (JSON, CLI) -> tuples
            value = getattr(self, key)
            if not (isinstance(value, (list, tuple)) and value and all(isinstance(v, int) and v > 0 for v in value)):
                raise ValueError(f"{key} must be a list of positive whole numbers, not {value!r}")
            object.__setattr__(self, key, tuple(value))
        if not isinstance(self.legacy, bool):
            raise ValueError(f"legacy must be true or false, not {self.legacy!r}")
        if self.M % self.slices:
            raise ValueError(f"M={self.M} is not divisible into {self.slices} slices")
        if self.local not in ("window", "conv"):
            raise ValueError(f"unknown local context {self.local!r}")
        if self.inter not in (None, "linear", "quadratic"):
            raise ValueError(f"unknown inter context {self.inter!r}")
        if self.intra not in ("linear", "quadratic"):
            raise ValueError(f"unknown intra context {self.intra!r}")

    @property
    def slice_channels(self) -> int:
        return self.M // self.slices

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MLICConfig":
        d = dict(d)
        for key in ("channel_hidden", "params_hidden", "lrp_hidden"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)

    def replace(self, **changes) -> "MLICConfig":
        return replace(self, **changes)
