"""The MLIC family of models and their registry."""

from .mlic import MLIC, MLICConfig
from .registry import MODELS, build, configs

__all__ = ["MLIC", "MLICConfig", "MODELS", "build", "configs"]
