"""Model weights as safetensors files that carry their own architecture.

A weights file holds the model's state dict (coding tables included, so the
decoder reads the exact integers the encoder used) and string metadata:
``format = "mlic-weights"``, ``format_version``, ``config`` (the JSON of
:class:`~mlic.models.MLICConfig`). Loading never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from .._torch_internals import version_key
from ..errors import MlicError
from ..models import MLIC, MLICConfig
from .files import atomic_write, check_input_file

FORMAT = "mlic-weights"
FORMAT_VERSION = "1"


class WeightsError(MlicError):
    """A weights file is missing, unreadable, corrupted or not made for mlic."""


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of a state dict's content: names, dtypes, shapes and bytes, in name order.

    Independent of file layout and metadata, so the same weights always give the
    same digest; ``.mlic`` files carry its first 8 bytes to name their weights.
    """
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def model_digest(model: MLIC) -> str:
    """The digest of ``model``'s current weights (cached while they stay unchanged)."""
    state = model.state_dict()
    key = tuple((k, version_key(v)) for k, v in state.items())
    cached = getattr(model, "_digest_cache", None)
    if cached is None or cached[0] != key:
        cached = (key, state_digest(state))
        model._digest_cache = cached
    return cached[1]


def safe_torch_load(path: str | Path, error: type[MlicError], what: str = "PyTorch checkpoint") -> dict:
    """``torch.load(weights_only=True)`` of a dict, with every failure turned into ``error``.

    ``weights_only`` never unpickles arbitrary objects (code in a hostile file does not run).
    """
    check_input_file(path, error)
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the error below says enough
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except Exception as exc:
        raise error(f"{path}: not a readable {what} ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise error(f"{path}: {what} is not a dict")
    return obj


def save_model(model: MLIC, path: str | Path, metadata: dict[str, str] | None = None, half: bool = False) -> Path:
    """Write ``model`` (after ``update()``) atomically to ``path``.

    ``half=True`` stores floating-point tensors as float16 (half the file; the coding
    tables stay integers). Loading casts them back to float32; the recorded SHA-256 is
    always that of the float32 state the model runs with, so it names the weights the
    same way however they are stored.
    """
    path = Path(path)
    model.update()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half().float() if v.is_floating_point() else v for k, v in state.items()}
    tensors = {k: v.half() if half and v.is_floating_point() else v for k, v in state.items()}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(model.config.to_dict()),
        "sha256": state_digest(state),
        "storage": "float16" if half else "float32",
    }
    meta.update(metadata or {})
    data = save(tensors, metadata=meta)
    atomic_write(path, lambda f: f.write(data), force=True)
    return path


def training_tradeoff(path: str | Path) -> tuple[float | None, str | None]:
    """``(lambda, metric)`` recorded in an exported weights file (``mlic export``), or Nones."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        lmbda = float(meta["lambda"]) if "lambda" in meta else None
    except (SafetensorError, OSError, ValueError):
        return None, None
    metric = meta.get("metric")
    return lmbda, metric if metric in ("mse", "ms-ssim") else None


def load_model(path: str | Path) -> MLIC:
    """Build the model described by a weights file and load its tensors (eval mode)."""
    path = Path(path)
    check_input_file(path, WeightsError, missing="no such weights file")
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
    if meta.get("storage", "float32") == "float16":
        tensors = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    elif meta.get("storage", "float32") != "float32":
        raise WeightsError(f"{path}: unknown tensor storage {meta['storage']!r}")
    digest = state_digest(tensors)
    if "sha256" in meta and meta["sha256"] != digest:
        raise WeightsError(f"{path}: weights are corrupted (SHA-256 does not match the recorded one)")
    model = MLIC(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{path}: weights do not match the configuration ({first})") from None
    model.eval()
    model._digest_cache = (tuple((k, version_key(v)) for k, v in model.state_dict().items()), digest)
    return model
