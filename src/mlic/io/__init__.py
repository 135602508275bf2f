"""Reading and writing things on disk: model weights (safetensors) and, later, .mlic files."""

from .weights import load_model, save_model

__all__ = ["load_model", "save_model"]
