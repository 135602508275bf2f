"""Global intra-slice context GA_i (architecture.md §5.5), non-anchor pass of slices i >= 1.

The attention between the two checkerboard halves of the previous slice ŷ_{i-1}
(non-anchor queries, anchor keys; both fully decoded) is applied to the current
slice's decoded anchors (values), spreading them to the non-anchor positions.
MEM++ uses linear attention (§5.5.1); MEM and MEM+ quadratic attention that
ignores keys inside the query's 5x5 neighbourhood, which the local context
already covers (§5.5.2, decision A2).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .checkerboard import ANCHOR, NONANCHOR, keep, squeeze, unsqueeze
from .attention import linear_attention, softmax_attention
from .global_inter import context_mlp, embedding


def _half_coordinates(half: str, h: int, w: int, device) -> tuple[Tensor, Tensor]:
    """Row and column of every squeezed position of ``half`` (row-major), each [h * w/2]."""
    r = torch.arange(h, device=device).view(h, 1).expand(h, w)
    c = torch.arange(w, device=device).view(1, w).expand(h, w)
    return squeeze(r, half).reshape(-1), squeeze(c, half).reshape(-1)


class GlobalIntraContext(nn.Module):
    """(ŷ_{i-1}, ŷ_i^anc) -> Φ_intra [B, 2C, h, w] (meaningful at non-anchors).

    Args:
        channels: slice width C.
        heads: attention heads (contiguous channel blocks).
        attention: ``"linear"`` (MEM++) or ``"quadratic"`` (MEM, MEM+).
        exclusion: quadratic only; keys with |drow| <= exclusion and |dcol| <=
            exclusion of the query get logit -100. -1 disables it.
    """

    def __init__(self, channels: int, heads: int = 2, attention: str = "linear", exclusion: int = 2) -> None:
        super().__init__()
        if attention not in ("linear", "quadratic"):
            raise ValueError(f"unknown attention {attention!r}")
        if channels % heads:
            raise ValueError("channels must be divisible by heads")
        self.attention, self.heads, self.exclusion = attention, heads, int(exclusion)
        c = channels
        self.queries = embedding(c)
        self.keys = embedding(c)
        self.values = embedding(c)
        self.reprojection = nn.Conv2d(c, 2 * c, 5, padding=2)
        self.mlp = context_mlp(2 * c, 4 * c, 2 * c)

    def forward(self, previous: Tensor, anchors: Tensor) -> Tensor:
        b, c, h, w = previous.shape
        d = c // self.heads
        # embeddings on full-resolution masked tensors, squeezed afterwards (order matters, §5.5)
        q = squeeze(self.queries(keep(previous, NONANCHOR)), NONANCHOR).reshape(b, self.heads, d, -1)
        k = squeeze(self.keys(keep(previous, ANCHOR)), ANCHOR).reshape(b, self.heads, d, -1)
        v = squeeze(self.values(anchors), ANCHOR).reshape(b, self.heads, d, -1)
        if self.attention == "linear":
            out = linear_attention(q, k, v)
        else:
            replace = None
            if self.exclusion >= 0:
                qr, qc = _half_coordinates(NONANCHOR, h, w, previous.device)
                kr, kc = _half_coordinates(ANCHOR, h, w, previous.device)
                e = self.exclusion

                def replace(rows: slice) -> Tensor:
                    near_r = (qr[rows, None] - kr[None, :]).abs() <= e
                    near_c = (qc[rows, None] - kc[None, :]).abs() <= e
                    return near_r & near_c

            out = softmax_attention(q, k, v, scale=1.0 / math.sqrt(d), replace=replace)
        out = unsqueeze(out.reshape(b, c, h, w // 2), NONANCHOR)
        r = self.reprojection(out)
        return r + self.mlp(r)
