"""Global inter-slice context GI_i (architecture.md §5.4): self-attention over all decoded slices.

MEM++ uses linear attention (§5.4.1); MEM+ quadratic softmax attention
(§5.4.2, decision A4). Both share the layers below, so their parameter counts
are identical.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..nn import conv1x1, dwconv3x3
from .attention import linear_attention, softmax_attention


def embedding(channels: int) -> nn.Sequential:
    """conv1x1 then depthwise 3x3: the only positional information of the global contexts."""
    return nn.Sequential(conv1x1(channels, channels), dwconv3x3(channels))


def context_mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv1x1(cin, hidden), nn.GELU(), dwconv3x3(hidden), nn.GELU(), conv1x1(hidden, cout))


class GlobalInterContext(nn.Module):
    """ŷ_<i [B, D, h, w] -> Φ_inter [B, 2C, h, w]; heads are contiguous blocks of ``head_dim`` channels."""

    def __init__(self, cin: int, slice_channels: int, head_dim: int = 32, attention: str = "linear") -> None:
        super().__init__()
        if attention not in ("linear", "quadratic"):
            raise ValueError(f"unknown attention {attention!r}")
        if cin % head_dim:
            raise ValueError("input channels must be a multiple of head_dim")
        self.attention, self.head_dim = attention, head_dim
        c = slice_channels
        self.queries = embedding(cin)
        self.keys = embedding(cin)
        self.values = embedding(cin)
        self.reprojection = nn.Conv2d(cin, 3 * c, 5, padding=2)
        self.mlp = context_mlp(3 * c, 4 * c, 2 * c)
        self.skip = conv1x1(3 * c, 2 * c)

    def forward(self, decoded: Tensor) -> Tensor:
        b, d, h, w = decoded.shape
        heads = d // self.head_dim
        q, k, v = (m(decoded).view(b, heads, self.head_dim, h * w) for m in (self.queries, self.keys, self.values))
        if self.attention == "linear":
            out = linear_attention(q, k, v)
        else:
            out = softmax_attention(q, k, v, scale=self.head_dim**-0.5)
        r = self.reprojection(out.reshape(b, d, h, w))
        return self.skip(r) + self.mlp(r)
