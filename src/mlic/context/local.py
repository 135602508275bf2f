"""Local spatial context LC_i (architecture.md §5.3): decoded anchors -> Φ_lc at every position.

The input is the current slice's anchor reconstruction with zeros at every
non-anchor, so anything computed from it is causal for the non-anchor pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkerboard import anchor_mask, squeeze


class StackedCheckerboardConv(nn.Module):
    """MEM (MLIC): unmasked 5x5 convolutions C -> C -> C -> 2C with GELU (§5.3.1, decision A3).

    Unmasked kernels are causal here because the input already holds only
    decoded anchors; stacking grows the receptive field to 13x13.
    """

    def __init__(self, channels: int, out_channels: int | None = None, depth: int = 3, kernel: int = 5) -> None:
        super().__init__()
        out_channels = 2 * channels if out_channels is None else out_channels
        layers: list[nn.Module] = []
        for i in range(depth):
            layers.append(nn.Conv2d(channels, out_channels if i == depth - 1 else channels, kernel, padding=kernel // 2))
            if i < depth - 1:
                layers.append(nn.GELU())
        self.layers = nn.Sequential(*layers)

    def forward(self, anchors: Tensor, half: str | None = None) -> Tensor:
        """Φ_lc [B, 2C, h, w]; with ``half``, that checkerboard half squeezed (same interface as
        :class:`CheckerboardWindowAttention`; the stacked convolutions need the full grid)."""
        out = self.layers(anchors)
        return out if half is None else squeeze(out, half)


def window_mask(h: int, w: int, kernel: int, device=None) -> Tensor:
    """Checkerboard window mask, [h*w, k*k, k*k] additive logits (0 or -100), §5.3.2 step 5.

    Slot pair (a, b) of the window centred at p is allowed only when both slots
    are in-image anchors. Non-anchor query slots therefore see -100 everywhere
    (a uniform shift: their softmax runs over all keys, which carry only
    constants or decoded anchors).
    """
    m = anchor_mask(h, w, device=device)
    slots = F.unfold(m, kernel, padding=kernel // 2)[0].transpose(0, 1)  # [L, k*k], 1 = in-image anchor
    allowed = slots[:, :, None] * slots[:, None, :]
    return (allowed - 1.0) * 100.0


def relative_position_index(kernel: int) -> Tensor:
    """[k*k, k*k] Swin-style index into a ((2k-1)^2)-entry table: (dy + k-1)(2k-1) + (dx + k-1)."""
    ys, xs = torch.meshgrid(torch.arange(kernel), torch.arange(kernel), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + kernel - 1
    dx = xs[:, None] - xs[None, :] + kernel - 1
    return dy * (2 * kernel - 1) + dx


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class CheckerboardWindowAttention(nn.Module):
    """MEM+ / MEM++: overlapped checkerboard window attention (§5.3.2, decisions A7, A12).

    One k x k window slides over every latent position (stride 1, zero padding).
    Inside a window, multi-head attention runs between its k*k slots with a
    relative-position bias and the checkerboard mask of :func:`window_mask`; the
    attended window is fused into its centre by a k x k convolution, then
    projected and refined by a residual MLP. Input channel c belongs to head
    ``c mod heads`` (interleaved); fused channels are head-blocked.
    """

    def __init__(self, channels: int, heads: int = 2, kernel: int = 5, mlp_ratio: int = 2) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError("channels must be divisible by heads")
        self.channels, self.heads, self.kernel = channels, heads, kernel
        self.head_dim = channels // heads
        self.scale = self.head_dim**-0.5
        out = 2 * channels
        self.norm1 = nn.LayerNorm(channels)
        self.qkv_proj = nn.Linear(channels, 3 * channels)
        self.relative_position_table = nn.Parameter(torch.zeros((2 * kernel - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(kernel))
        self.fusion = nn.Conv2d(channels, out, kernel)
        self.proj = nn.Linear(out, out)
        self.norm2 = nn.LayerNorm(out)
        self.mlp = _Mlp(out, mlp_ratio * out)

    def _windows(self, t: Tensor, half: str | None = None) -> Tensor:
        """[B, C, h, w] -> [B, L, heads, k*k, head_dim] (interleaved head split); with ``half``
        only the windows centred on that checkerboard half, in squeezed order."""
        b, _, h, w = t.shape
        k2 = self.kernel**2
        cols = F.unfold(t, self.kernel, padding=self.kernel // 2)  # [B, C*k2, L], channel-major
        if half is not None:
            cols = squeeze(cols.view(b, -1, h, w), half).reshape(b, cols.shape[1], -1)
        cols = cols.view(b, self.head_dim, self.heads, k2, cols.shape[-1])
        return cols.permute(0, 4, 2, 3, 1)

    def forward(self, anchors: Tensor, half: str | None = None) -> Tensor:
        """Φ_lc [B, 2C, h, w]; with ``half``, only that checkerboard half, squeezed: [B, 2C, h, w/2].

        Every window is computed independently of the others, so ``half`` skips the
        windows centred on the other half (half the attention work) and gives the same
        bits there as the full grid (tested).
        """
        b, c, h, w = anchors.shape
        k2 = self.kernel**2
        tokens = self.qkv_proj(self.norm1(anchors.flatten(2).transpose(1, 2)))  # [B, L, 3C]
        q, k, v = (x.transpose(1, 2).reshape(b, c, h, w) for x in tokens.chunk(3, dim=-1))
        mask = window_mask(h, w, self.kernel, anchors.device).to(q.dtype)  # [L, k2, k2]
        if half is not None:
            mask = squeeze(mask.permute(1, 2, 0).reshape(k2, k2, h, w), half).reshape(k2, k2, -1).permute(2, 0, 1)
        q, k, v = (self._windows(t, half) for t in (q, k, v))  # [B, L, H, k2, d]
        L = q.shape[1]
        bias = self.relative_position_table[self.relative_position_index.view(-1)]
        bias = bias.view(k2, k2, self.heads).permute(2, 0, 1)  # [H, k2, k2]
        logits = torch.matmul(q * self.scale, k.transpose(-1, -2)) + bias + mask[:, None]
        out = torch.matmul(torch.softmax(logits, dim=-1), v)  # [B, L, H, k2, d]
        # head-blocked channel order (head * d + j), then slot: the layout the fusion conv expects
        out = out.permute(0, 1, 2, 4, 3).reshape(b, L, c * k2)
        u = F.linear(out, self.fusion.weight.reshape(2 * c, c * k2), self.fusion.bias)
        u = self.proj(u)
        u = u + self.mlp(self.norm2(u))
        return u.transpose(1, 2).reshape(b, 2 * c, h, L // h)
