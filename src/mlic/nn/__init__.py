"""Neural-network building blocks shared by the transforms and the entropy models."""

from .blocks import (
    ResidualBlock,
    ResidualBlockUpsample,
    ResidualBlockWithStride,
    conv1x1,
    conv3x3,
    dwconv3x3,
    subpel3x3,
)
from .bound import NonNegativeParametrizer, lower_bound, scale_gradient
from .gdn import GDN, IGDN

__all__ = [
    "GDN",
    "IGDN",
    "NonNegativeParametrizer",
    "ResidualBlock",
    "ResidualBlockUpsample",
    "ResidualBlockWithStride",
    "conv1x1",
    "conv3x3",
    "dwconv3x3",
    "lower_bound",
    "scale_gradient",
    "subpel3x3",
]
