"""Training: data from image folders, the rate-distortion loss, and a resumable (optionally
distributed) training loop. Entry points: :func:`mlic.train.train` and ``mlic train``."""

from .config import TrainConfig
from .loop import export_checkpoint, train

__all__ = ["TrainConfig", "export_checkpoint", "train"]
