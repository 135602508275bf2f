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


def model_config(name: str, **overrides) -> MLICConfig:
    """The configuration of family ``name`` with ``overrides`` (no torch); ValueError, in one
    line, for an unknown family, an unknown field or a value the architecture cannot take."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(configs())}")
    try:
        return MODELS[name].replace(**overrides)
    except TypeError as exc:  # an unknown field
        raise ValueError(f"{exc}; model settings are {', '.join(MODELS[name].to_dict())}") from None


def build(name: str, **overrides) -> "MLIC":
    """A fresh, randomly initialised model of family ``name`` with config ``overrides``."""
    from .mlic import MLIC

    return MLIC(model_config(name, **overrides))
