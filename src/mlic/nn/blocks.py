"""Convolution helpers and the GELU residual blocks of the MLIC transforms (architecture.md §2.1, §2.3)."""

from __future__ import annotations

from torch import Tensor, nn

from .gdn import GDN, IGDN
from .inference import gelu, plus


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride)


def dwconv3x3(channels: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, padding=1, groups=channels)


def subpel3x3(cin: int, cout: int, r: int) -> nn.Sequential:
    """3x3 conv to ``cout * r^2`` channels, then PixelShuffle(r): upsampling by ``r``."""
    return nn.Sequential(nn.Conv2d(cin, cout * r * r, 3, padding=1), nn.PixelShuffle(r))


class ResidualBlockWithStride(nn.Module):
    """RBS: conv3x3/s -> GELU -> conv3x3 -> GDN, plus a strided 1x1 skip."""

    def __init__(self, cin: int, cout: int, stride: int = 2) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.act = nn.GELU()
        self.conv2 = conv3x3(cout, cout)
        self.gdn = GDN(cout)
        self.skip = conv1x1(cin, cout, stride) if stride != 1 or cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.gdn(self.conv2(gelu(self.conv1(x), self.act)))
        return plus(out, x if self.skip is None else self.skip(x))


class ResidualBlock(nn.Module):
    """RB: conv3x3 -> GELU -> conv3x3 -> GELU, plus identity (or 1x1) skip."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, cout)
        self.act = nn.GELU()
        self.conv2 = conv3x3(cout, cout)
        self.skip = conv1x1(cin, cout) if cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        out = gelu(self.conv2(gelu(self.conv1(x), self.act)), self.act)
        return plus(out, x if self.skip is None else self.skip(x))


class ResidualBlockUpsample(nn.Module):
    """RBU: subpel3x3 -> GELU -> conv3x3 -> IGDN, plus a separate subpel3x3 branch."""

    def __init__(self, cin: int, cout: int, r: int = 2) -> None:
        super().__init__()
        self.subpel_conv = subpel3x3(cin, cout, r)
        self.act = nn.GELU()
        self.conv = conv3x3(cout, cout)
        self.igdn = IGDN(cout)
        self.upsample = subpel3x3(cin, cout, r)

    def forward(self, x: Tensor) -> Tensor:
        return plus(self.igdn(self.conv(gelu(self.subpel_conv(x), self.act))), self.upsample(x))
