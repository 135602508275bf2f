"""A model's architecture as data (no torch): what is saved next to its weights."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

# Precisions of the transforms g_a / g_s (MLIC.transform_precision); never of the probability
# path (float32 in training, float64 when coding format version 3). "auto": bf16 where the
# hardware has native bf16 kernels, else fp32.
PRECISIONS = ("auto", "fp32", "bf16")

# g_a downsamples by 16 and h_a by 4 more: inputs are padded right/bottom to a multiple of 64 (§3.5)
PAD = 64
LATENT_STRIDE = 16


def coded_geometry(h: int, w: int) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(latent y, hyper-latent z, padding) sizes of an h x w image: the one place they are derived."""
    ph, pw = (-h) % PAD, (-w) % PAD
    H, W = h + ph, w + pw
    return (H // LATENT_STRIDE, W // LATENT_STRIDE), (H // PAD, W // PAD), (ph, pw)


QUALITY_SCALE = 256  # qualities are recorded in steps of 1/256 (docs/format.md, version 4)


def quality_code(quality: float) -> int:
    """A quality as the fixed-point integer a file records (round(quality * 256))."""
    return int(round(quality * QUALITY_SCALE))


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
    # Variable rate (gain units, docs/models.md): the lambdas of the learned gain levels, for the
    # qualities first_quality, first_quality + 1, ...; () = one rate (a per-lambda model).
    rate_lambdas: tuple[float, ...] = ()
    first_quality: int = 1
    z_gains: bool = False  # variable rate: gain units on the hyper-latent z too, per level
    # Width of g_a and g_s when it differs from N (which stays the hyper-latent's width); None = N.
    transform_channels: int | None = None
    # Width of g_a alone when it differs from g_s's (an encoder-only change: the decoder, and so
    # what it costs to decode, stays the same); None = transform_width.
    analysis_channels: int | None = None

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
        lambdas = self.rate_lambdas
        if not (isinstance(lambdas, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                          and math.isfinite(v) and v > 0 for v in lambdas)):
            raise ValueError(f"rate_lambdas must be a list of positive numbers, not {lambdas!r}")
        if len(lambdas) == 1 or any(b <= a for a, b in zip(lambdas, lambdas[1:])):
            raise ValueError("rate_lambdas needs at least two levels, in increasing order")
        object.__setattr__(self, "rate_lambdas", tuple(float(v) for v in lambdas))
        if not (isinstance(self.first_quality, int) and not isinstance(self.first_quality, bool)
                and 0 <= self.first_quality and self.first_quality + len(lambdas) <= 256):
            raise ValueError(f"first_quality must be a whole number in 0-{256 - max(len(lambdas), 1)}, not {self.first_quality!r}")
        if not isinstance(self.z_gains, bool) or (self.z_gains and not lambdas):
            raise ValueError("z_gains must be true or false, and true only with rate_lambdas")
        width = self.transform_channels
        if width is not None and not (isinstance(width, int) and not isinstance(width, bool) and width > 0):
            raise ValueError(f"transform_channels must be a positive whole number or null, not {width!r}")
        if width == self.N:  # one spelling per architecture
            object.__setattr__(self, "transform_channels", None)
        width = self.analysis_channels
        if width is not None and not (isinstance(width, int) and not isinstance(width, bool) and width > 0):
            raise ValueError(f"analysis_channels must be a positive whole number or null, not {width!r}")
        if width == self.transform_width:
            object.__setattr__(self, "analysis_channels", None)
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
    def variable_rate(self) -> bool:
        return bool(self.rate_lambdas)

    @property
    def quality_range(self) -> tuple[int, int]:
        """(lowest, highest) quality of a variable-rate model."""
        return self.first_quality, self.first_quality + len(self.rate_lambdas) - 1

    @property
    def transform_width(self) -> int:
        """Channels inside g_a and g_s."""
        return self.transform_channels or self.N

    @property
    def analysis_width(self) -> int:
        """Channels inside g_a."""
        return self.analysis_channels or self.transform_width

    @property
    def slice_channels(self) -> int:
        return self.M // self.slices

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("transform_channels", "analysis_channels"):
            if d[key] is None:  # files of models without the field stay as they were
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MLICConfig":
        d = dict(d)
        for key in ("channel_hidden", "params_hidden", "lrp_hidden", "rate_lambdas"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)

    def replace(self, **changes) -> "MLICConfig":
        return replace(self, **changes)
