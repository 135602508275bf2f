"""Entropy-parameter networks (§5.6) and latent residual prediction (§5.7)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn import conv1x1, conv3x3


class EntropyParameters(nn.Module):
    """1x1 conv stack: contexts -> (scale, mean), each C channels (raw, no positivity).

    in -> hidden[0] -> GELU -> hidden[1] -> GELU -> hidden[2] -> GELU -> 2C.
    """

    def __init__(self, cin: int, slice_channels: int, hidden: tuple[int, ...] = (320, 256, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = cin
        for hid in hidden:
            layers += [conv1x1(width, hid), nn.GELU()]
            width = hid
        layers.append(conv1x1(width, 2 * slice_channels))
        self.fusion = nn.Sequential(*layers)

    def forward(self, ctx: Tensor) -> tuple[Tensor, Tensor]:
        scales, means = self.fusion(ctx).chunk(2, dim=1)
        return scales, means


def _legacy_widths(cin: int, cout: int) -> list[int]:
    """2023 LRP widths: in, in - D/4, in - D/2, in - 3D/4, out with D = in - out (floors)."""
    d = cin - cout
    return [cin, cin - d // 4, cin - d // 2, cin - (3 * d) // 4, cout]


class LatentResidualPrediction(nn.Module):
    """LRP (Minnen & Singh 2020): [hyper_mu, ŷ_<i, partial ŷ_i] -> residual in (-0.5, 0.5).

    Current: conv3x3(in -> 224) -> GELU -> conv3x3(-> 128) -> GELU -> conv3x3(-> C).
    ``legacy=True``: four conv3x3 with linearly shrinking widths (2023 checkpoints).
    """

    def __init__(self, cin: int, cout: int, hidden: tuple[int, ...] = (224, 128), legacy: bool = False) -> None:
        super().__init__()
        widths = _legacy_widths(cin, cout) if legacy else [cin, *hidden, cout]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [conv3x3(a, b), nn.GELU()]
        self.lrp_transform = nn.Sequential(*layers[:-1])

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * torch.tanh(self.lrp_transform(x))
