"""Import of the official MLIC++ checkpoints (JiangWeibeta/MLIC, folder MLIC++/).

Official checkpoints are ``torch.save`` dicts with a ``"state_dict"`` entry
(plus optimiser state we ignore). Their keys differ from ours only by a few
container names, so conversion is a rename plus a shape check:

============================================  ==========================
official                                      mlic
============================================  ==========================
``g_a.analysis_transform.<i>``                ``g_a.<i>``
``g_s.synthesis_transform.<i>``               ``g_s.<i>``
``h_a.reduction.<i>``                         ``h_a.<i>``
``h_s.increase.<i>``                          ``h_s.<i>``
``channel_context.<i>.fushion``               ``channel_context.<i>.fusion``
``entropy_bottleneck._matrix<i>`` (1.2.0b3)   ``entropy_bottleneck.matrices.<i>``
``entropy_bottleneck._bias<i>`` / ``_factor``  ``biases.<i>`` / ``factors.<i>``
============================================  ==========================

A ``module.`` prefix (multi-GPU training) is stripped. CompressAI's CDF
buffers, lower-bound and reparametrisation constants are dropped: we rebuild
our own tables with ``update()`` rather than trusting theirs. Whether the
checkpoint uses the 2023 (legacy) or the current LRP and g_s is detected from
the shapes, as are N, M and the number of slices.
"""

from __future__ import annotations

import re
from pathlib import Path

from torch import Tensor

from .errors import MlicError
from .io.weights import safe_torch_load
from .models import MLIC, build

_RENAMES = [
    (re.compile(r"^g_a\.analysis_transform\."), "g_a."),
    (re.compile(r"^g_s\.synthesis_transform\."), "g_s."),
    (re.compile(r"^h_a\.reduction\."), "h_a."),
    (re.compile(r"^h_s\.increase\."), "h_s."),
    (re.compile(r"^(channel_context\.\d+)\.fushion\."), r"\1.fusion."),
    (re.compile(r"^entropy_bottleneck\._matrix(\d+)$"), r"entropy_bottleneck.matrices.\1"),
    (re.compile(r"^entropy_bottleneck\._bias(\d+)$"), r"entropy_bottleneck.biases.\1"),
    (re.compile(r"^entropy_bottleneck\._factor(\d+)$"), r"entropy_bottleneck.factors.\1"),
]
_DROP = re.compile(
    r"(^gaussian_conditional\.)"
    r"|(^entropy_bottleneck\.(_offset|_quantized_cdf|_cdf_length|target|likelihood_lower_bound\.bound)$)"
    r"|(_reparam\.(pedestal|lower_bound\.bound)$)"
    r"|(\.relative_position_index$)"
)


class CheckpointError(MlicError):
    """An official checkpoint cannot be mapped onto our models."""


def rename_official_key(key: str) -> str | None:
    """Our name for an official key, or None for entries we rebuild ourselves."""
    if key.startswith("module."):
        key = key[len("module."):]
    if _DROP.search(key):
        return None
    for pattern, repl in _RENAMES:
        key = pattern.sub(repl, key)
    return key


def _detect(sd: dict[str, Tensor]) -> dict:
    """N, M, slices and the legacy switch, from the shapes of a renamed state dict."""
    try:
        M, N = sd["g_a.6.weight"].shape[:2]
        slices = len({k.split(".")[1] for k in sd if k.startswith("lrp_anchor.")})
        legacy_gs = sd["g_s.0.conv1.weight"].shape[0] != M
        legacy_lrp = "lrp_anchor.0.lrp_transform.6.weight" in sd
    except KeyError as exc:
        raise CheckpointError(f"not an MLIC++ state dict: missing {exc.args[0]}") from None
    if legacy_gs != legacy_lrp:
        raise CheckpointError("checkpoint mixes legacy and current LRP/g_s modules; not supported")
    return {"N": int(N), "M": int(M), "slices": int(slices), "legacy": bool(legacy_gs)}


def _renamed(sd: dict) -> tuple[dict[str, Tensor], dict]:
    """Our names for the official entries we keep, and the detected configuration."""
    if isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    renamed: dict[str, Tensor] = {}
    for key, value in sd.items():
        new = rename_official_key(str(key))
        if new is not None:
            if not isinstance(value, Tensor):
                raise CheckpointError(f"{key}: not a tensor")
            renamed[new] = value
    return renamed, _detect(renamed)


def _fill(model: MLIC, renamed: dict[str, Tensor]) -> dict[str, Tensor]:
    """A complete state dict for ``model``: parameters from the checkpoint, buffers our own."""
    template = model.state_dict()
    params = dict(model.named_parameters())
    unknown = sorted(set(renamed) - set(params))
    if unknown:
        raise CheckpointError(f"unexpected keys in checkpoint: {', '.join(unknown[:5])}")
    out: dict[str, Tensor] = {}
    for key, ref in template.items():
        if key not in params:
            out[key] = ref  # buffers (tables, targets, window index) are ours
            continue
        if key not in renamed:
            raise CheckpointError(f"checkpoint lacks {key}")
        value = renamed[key]
        if tuple(value.shape) != tuple(ref.shape):
            raise CheckpointError(f"{key}: shape {tuple(value.shape)} does not match {tuple(ref.shape)}")
        out[key] = value.detach().to(ref.dtype).clone()
    return out


def convert_mlicpp_state_dict(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map an official MLIC++ state dict (or checkpoint dict) onto ``build("mlic-plusplus", ...)``.

    The architecture (N, M, slices, legacy or current LRP/g_s) is detected from
    the shapes; the result loads with ``load_state_dict(strict=True)`` into
    :func:`model_for_official`'s model. Call ``update(force=True)`` afterwards
    to build the coding tables.
    """
    renamed, config = _renamed(sd)
    return _fill(build("mlic-plusplus", **config), renamed)


def model_for_official(sd: dict[str, Tensor]) -> MLIC:
    """A fresh MLIC++ model with the architecture of an official state dict."""
    return build("mlic-plusplus", **_renamed(sd)[1])


def load_official_checkpoint(path: str | Path) -> MLIC:
    """Read an official checkpoint safely (``weights_only=True``) into a ready-to-code model."""
    ckpt = safe_torch_load(path, CheckpointError)
    renamed, config = _renamed(ckpt)
    model = build("mlic-plusplus", **config)
    model.load_state_dict(_fill(model, renamed), strict=True)
    model.update(force=True)
    return model.eval()
