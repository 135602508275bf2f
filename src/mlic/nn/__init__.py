"""Neural-network building blocks shared by the transforms and the entropy models."""

from .bound import lower_bound, NonNegativeParametrizer

__all__ = ["lower_bound", "NonNegativeParametrizer"]
