"""Start a model with wider g_a / g_s from trained weights (``mlic train --init`` with a larger
``transform_channels``, or ``analysis_channels`` for g_a alone): the trained channels keep their weights, the added ones start fresh
and the weights by which they reach the trained channels start at zero, so the wider model
computes what the trained one did (up to summation order) and every added channel still
receives gradients from the first step (Net2Net-style growth, with zero outgoing weights).
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.mlic import MLIC
from ..nn.gdn import GDN


def can_widen(a, b) -> bool:
    """Whether configuration ``b`` is ``a`` with g_a and / or g_s wider (and nothing else changed)."""
    same = a.replace(transform_channels=b.transform_channels, analysis_channels=b.analysis_channels) == b
    wider = (b.transform_width, b.analysis_width) != (a.transform_width, a.analysis_width)
    return same and wider and b.transform_width >= a.transform_width and b.analysis_width >= a.analysis_width


@torch.no_grad()
def widen_transforms(model: MLIC, src: MLIC) -> None:
    """Load ``src`` into ``model``, whose g_a / g_s are at least as wide; all else must match."""
    a, b = src.config, model.config
    if not can_widen(a, b) and a != b:
        raise ValueError("widening needs the same model with wider (or equal) g_a / g_s")
    prefixes = ("g_a.", "g_s.")
    rest = {k: v for k, v in src.state_dict().items() if not k.startswith(prefixes)}
    missing, unexpected = model.load_state_dict(rest, strict=False)
    assert not unexpected and all(k.startswith(prefixes) for k in missing), (missing, unexpected)
    for name in ("g_a", "g_s"):
        new_modules = dict(getattr(model, name).named_modules())
        for path, old in getattr(src, name).named_modules():
            new = new_modules[path]
            if isinstance(old, GDN):
                _widen_gdn(new, old)
            elif isinstance(old, nn.Conv2d):
                _widen_conv(new, old)
            elif list(old.parameters(recurse=False)):
                raise TypeError(f"{name}.{path}: no widening rule for {type(old).__name__}")


def _widen_conv(new: nn.Conv2d, old: nn.Conv2d) -> None:
    # Output channels beyond the old ones keep their fresh initialisation (a sub-pixel conv's
    # outputs c*r*r .. c*r*r + r*r - 1 all belong to channel c, so appended outputs are new
    # channels there too); inputs beyond the old ones must not reach the old outputs.
    out, inp = old.weight.shape[:2]
    new.weight[:out, :inp] = old.weight
    new.weight[:out, inp:] = 0
    if old.bias is not None:
        new.bias[:out] = old.bias


def _widen_gdn(new: GDN, old: GDN) -> None:
    c = old.beta.shape[0]
    new.beta[:c] = old.beta
    new.gamma[:c, :c] = old.gamma
    zero = new.gamma_reparam.init(torch.zeros(()))  # stored value of gamma = 0
    new.gamma[:c, c:] = zero  # old channels are not normalised by new ones
    new.gamma[c:, :c] = zero
