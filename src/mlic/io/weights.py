"""Model weights as safetensors files that carry their own architecture.

A weights file holds the model's state dict (coding tables included, so the
decoder reads the exact integers the encoder used) and string metadata:
``format = "mlic-weights"``, ``format_version``, ``config`` (the JSON of
:class:`~mlic.models.MLICConfig`). Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from ..errors import MlicError
from ..models import MLIC, MLICConfig

FORMAT = "mlic-weights"
FORMAT_VERSION = "1"


class WeightsError(MlicError):
    """A weights file is missing, unreadable or not made for mlic."""


def save_model(model: MLIC, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` (after ``update()``) atomically to ``path``."""
    path = Path(path)
    model.update()
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": json.dumps(model.config.to_dict())}
    meta.update(metadata or {})
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_model(path: str | Path) -> MLIC:
    """Build the model described by a weights file and load its tensors (eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{path}: not an mlic weights file (no '{FORMAT}' metadata)")
    try:
        config = MLICConfig.from_dict(json.loads(meta["config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{path}: invalid model configuration in metadata ({exc})") from None
    model = MLIC(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{path}: weights do not match the configuration ({first})") from None
    return model.eval()
