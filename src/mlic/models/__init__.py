"""The MLIC family of models and their registry (exports imported on first use)."""

from .._lazy import lazy_exports

_WHERE = {"MLIC": "mlic", "MLICConfig": "config", "MODELS": "registry", "build": "registry", "configs": "registry"}
__all__ = list(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
