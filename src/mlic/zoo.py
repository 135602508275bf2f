"""Bundled weights: what ships inside the package, verified before use.

``mlic/weights/manifest.json`` lists every bundled weights file with its model
family, its quality (one-rate weights: ``"quality"`` and ``"lambda"``) or range of
qualities (variable-rate weights: ``"qualities": [low, high]``, any real number between),
metric and SHA-256 (of the tensor content, see :func:`mlic.io.weights.state_digest`).
Nothing is ever downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from typing import TYPE_CHECKING

from .errors import MlicError

if TYPE_CHECKING:  # torch is imported only to load a model (``mlic zoo`` stays instant)
    from .models import MLIC


@dataclass(frozen=True)
class ZooEntry:
    model: str
    low: float  # lowest quality (one-rate weights: low == high == their quality)
    high: float
    metric: str
    lmbda: float | None  # one-rate weights' trade-off; None for variable-rate ones
    file: str
    sha256: str
    lambdas: tuple[float, ...] = ()  # variable-rate weights: the trade-offs of their levels

    @property
    def path(self) -> Path:
        return Path(str(resources.files("mlic") / "weights" / self.file))

    @property
    def variable_rate(self) -> bool:
        return self.low < self.high

    def covers(self, quality: float) -> bool:
        return self.low <= quality <= self.high

    def describe(self) -> str:
        q = f"q{self.low:g}-{self.high:g}" if self.variable_rate else f"q{self.low:g}"
        return f"{self.model} {q} ({self.metric})"


def _entry(m: dict) -> ZooEntry:
    if "qualities" in m:
        low, high = (float(q) for q in m["qualities"])
        lmbda = None
    else:
        low = high = float(m["quality"])
        lmbda = float(m["lambda"])
    return ZooEntry(m["model"], low, high, m["metric"], lmbda, m["file"], m["sha256"], tuple(m.get("lambdas", ())))


class ZooError(MlicError):
    """A requested model or quality is not bundled."""


def entries() -> list[ZooEntry]:
    raw = json.loads((resources.files("mlic") / "weights" / "manifest.json").read_text())
    return [_entry(m) for m in raw.get("models", [])]


def find(model: str, quality: float | None = None, metric: str = "mse") -> ZooEntry:
    """The bundled entry for ``model`` that covers ``quality`` (default: the one reaching the
    highest bundled quality)."""
    matches = [e for e in entries() if e.model == model and e.metric == metric]
    if quality is not None:
        matches = [e for e in matches if e.covers(quality)]
    if not matches:
        have = ", ".join(e.describe() for e in entries()) or "none"
        q = f" quality {quality:g}" if quality is not None else ""
        raise ZooError(f"no bundled weights for {model}{q} ({metric}); bundled: {have}; pass --weights PATH")
    return max(matches, key=lambda e: e.high)


def points(model: str | None = None, metric: str | None = "mse", step: float = 1.0) -> list[tuple[float, ZooEntry]]:
    """Every bundled rate point, sorted: (quality, entry); variable-rate weights at ``low``,
    ``low + step``, ... up to ``high`` (always included). ``None`` matches any model or metric."""
    out = []
    for e in entries():
        if (model is not None and e.model != model) or (metric is not None and e.metric != metric):
            continue
        n = int(round((e.high - e.low) / step)) if e.variable_rate else 0
        qualities = sorted({min(e.low + k * step, e.high) for k in range(n + 1)} | {e.high})
        out += [(q, e) for q in qualities]
    return sorted(out, key=lambda p: (p[1].model, p[1].metric, p[0]))


def load(entry: ZooEntry) -> "MLIC":
    """Load a bundled model, refusing it unless its SHA-256 matches the manifest."""
    from .io.weights import WeightsError, load_model, model_digest

    model = load_model(entry.path)
    if model_digest(model) != entry.sha256:
        raise WeightsError(f"bundled weights {entry.file} fail their SHA-256 check; reinstall mlic")
    return model


def retired(model: str, tag: bytes) -> dict | None:
    """The manifest's record of weights that were bundled once and are no longer, by file tag."""
    raw = json.loads((resources.files("mlic") / "weights" / "manifest.json").read_text())
    for r in raw.get("retired", []):
        if r["model"] == model and bytes.fromhex(r["sha256"]).startswith(tag):
            return r
    return None


def by_tag(model: str, tag: bytes) -> ZooEntry | None:
    """The bundled entry whose weights hash starts with ``tag`` (how .mlic files name weights)."""
    for e in entries():
        if e.model == model and bytes.fromhex(e.sha256).startswith(tag):
            return e
    return None
