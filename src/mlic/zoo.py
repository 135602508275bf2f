"""Bundled weights: what ships inside the package, verified before use.

``mlic/weights/manifest.json`` lists every bundled weights file with its model
family, quality index, metric, lambda and SHA-256 (of the tensor content, see
:func:`mlic.io.weights.state_digest`). Nothing is ever downloaded.
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
    quality: int
    metric: str
    lmbda: float
    file: str
    sha256: str

    @property
    def path(self) -> Path:
        return Path(str(resources.files("mlic") / "weights" / self.file))


class ZooError(MlicError):
    """A requested model or quality is not bundled."""


def entries() -> list[ZooEntry]:
    raw = json.loads((resources.files("mlic") / "weights" / "manifest.json").read_text())
    return [
        ZooEntry(m["model"], int(m["quality"]), m["metric"], float(m["lambda"]), m["file"], m["sha256"])
        for m in raw.get("models", [])
    ]


def find(model: str, quality: int | None = None, metric: str = "mse") -> ZooEntry:
    """The bundled entry for ``model`` at ``quality`` (default: the highest bundled quality)."""
    matches = [e for e in entries() if e.model == model and e.metric == metric]
    if quality is not None:
        matches = [e for e in matches if e.quality == quality]
    if not matches:
        have = ", ".join(f"{e.model} q{e.quality} ({e.metric})" for e in entries()) or "none"
        q = f" quality {quality}" if quality is not None else ""
        raise ZooError(f"no bundled weights for {model}{q} ({metric}); bundled: {have}; pass --weights PATH")
    return max(matches, key=lambda e: e.quality)


def load(entry: ZooEntry) -> "MLIC":
    """Load a bundled model, refusing it unless its SHA-256 matches the manifest."""
    from .io.weights import WeightsError, load_model, model_digest

    model = load_model(entry.path)
    if model_digest(model) != entry.sha256:
        raise WeightsError(f"bundled weights {entry.file} fail their SHA-256 check; reinstall mlic")
    return model


def by_tag(model: str, tag: bytes) -> ZooEntry | None:
    """The bundled entry whose weights hash starts with ``tag`` (how .mlic files name weights)."""
    for e in entries():
        if e.model == model and bytes.fromhex(e.sha256).startswith(tag):
            return e
    return None
