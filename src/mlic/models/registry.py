"""Registry: ``build(name, **config)`` for ``"mlic"``, ``"mlic-plus"`` and ``"mlic-plusplus"``.

Default configurations follow architecture.md §1 and §12 (A1: MLIC defaults to
M = 192 with 6 slices; ``build("mlic", M=320, slices=10)`` is the alternative).
Any field of :class:`~mlic.models.MLICConfig` can be overridden, e.g. tiny
models for tests: ``build("mlic-plus", N=16, M=32, slices=4, ...)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import MLICConfig

if TYPE_CHECKING:
    from .mlic import MLIC

MODELS: dict[str, MLICConfig] = {
    "mlic": MLICConfig(name="mlic", M=192, slices=6, local="conv", inter=None, intra="quadratic"),
    "mlic-plus": MLICConfig(name="mlic-plus", local="window", inter="quadratic", intra="quadratic"),
    "mlic-plusplus": MLICConfig(name="mlic-plusplus", local="window", inter="linear", intra="linear"),
}


def configs() -> list[str]:
    return sorted(MODELS)


def build(name: str, **overrides) -> "MLIC":
    """A fresh, randomly initialised model of family ``name`` with config ``overrides``."""
    from .mlic import MLIC

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(configs())}")
    return MLIC(MODELS[name].replace(**overrides))
