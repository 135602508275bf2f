"""Training: data from image folders and a resumable (optionally
distributed) training loop. Entry points: :func:`mlic.train.train` and ``mlic train``
(exports imported on first use)."""

from .._lazy import lazy_exports

_WHERE = {"TrainConfig": "config", "export_checkpoint": "loop", "train": "loop"}
__all__ = list(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
