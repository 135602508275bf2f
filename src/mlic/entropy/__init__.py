"""Entropy models: probabilities of latents, for the rate term and for coding.

- :class:`EntropyBottleneck`: factorized learned prior for the hyper-latent z.
- :class:`GaussianConditional`: conditional Gaussian for y given scales and means.
- :mod:`.quantize`: noise, straight-through and hard rounding around a mean.
- integer CDF tables (built by `update()`) live in :mod:`mlic.coding.tables`.
"""

from .bottleneck import EntropyBottleneck
from .gaussian import GaussianConditional, default_scale_table
from .quantize import add_uniform_noise, quantize, ste_round

__all__ = [
    "EntropyBottleneck",
    "GaussianConditional",
    "default_scale_table",
    "add_uniform_noise",
    "quantize",
    "ste_round",
]
