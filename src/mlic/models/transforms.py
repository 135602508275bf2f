"""The four transforms g_a, g_s, h_a, h_s (architecture.md §3), shared by MLIC, MLIC+ and MLIC++.

Module indices inside each ``nn.Sequential`` mirror the official MLIC++ layout so
that published checkpoints map onto these modules by renaming alone.
"""

from __future__ import annotations

from torch import nn

from ..nn import (
    ResidualBlock as RB,
    ResidualBlockUpsample as RBU,
    ResidualBlockWithStride as RBS,
    conv3x3,
    subpel3x3,
)


def analysis_transform(N: int, M: int) -> nn.Sequential:
    """g_a: [B, 3, H, W] -> y [B, M, H/16, W/16]."""
    return nn.Sequential(
        RBS(3, N), RB(N, N),
        RBS(N, N), RB(N, N),
        RBS(N, N), RB(N, N),
        conv3x3(N, M, stride=2),
    )  # fmt: skip


def synthesis_transform(N: int, M: int, legacy: bool = False) -> nn.Sequential:
    """g_s: y_hat [B, M, h, w] -> x_hat [B, 3, 16h, 16w] (not clamped).

    ``legacy=True`` is the 2023 variant (first block RB(M -> N) with a 1x1 skip,
    then RBU(N -> N)) used by the papers' checkpoints; the default is the
    current one (RB(M -> M), RBU(M -> N)), §3.2 and decision A5.
    """
    head = [RB(M, N), RBU(N, N)] if legacy else [RB(M, M), RBU(M, N)]
    return nn.Sequential(
        *head,
        RB(N, N), RBU(N, N),
        RB(N, N), RBU(N, N),
        RB(N, N),
        subpel3x3(N, 3, 2),
    )  # fmt: skip


def hyper_analysis(N: int, M: int) -> nn.Sequential:
    """h_a: y [B, M, h, w] -> z [B, N, h/4, w/4]."""
    return nn.Sequential(
        conv3x3(M, N), nn.GELU(),
        conv3x3(N, N), nn.GELU(),
        conv3x3(N, N, stride=2), nn.GELU(),
        conv3x3(N, N), nn.GELU(),
        conv3x3(N, N, stride=2),
    )  # fmt: skip


def hyper_synthesis(N: int, M: int) -> nn.Sequential:
    """h_s: z_hat [B, N, h/4, w/4] -> hyper [B, 2M, h, w] (second half = hyper_mu)."""
    mid = 3 * M // 2
    return nn.Sequential(
        conv3x3(N, M), nn.GELU(),
        subpel3x3(M, M, 2), nn.GELU(),
        conv3x3(M, mid), nn.GELU(),
        subpel3x3(mid, mid, 2), nn.GELU(),
        conv3x3(mid, 2 * M),
    )  # fmt: skip
