"""Reading and writing things on disk: the .mlic container, images, model weights
(safetensors), input checks and output files (one atomic writer), and the pixel <-> tensor
conversion (exports imported on first use)."""

from .._lazy import lazy_exports

_WHERE = {"load_model": "weights", "save_model": "weights"}
__all__ = list(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
