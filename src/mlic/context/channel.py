"""Channel context CC_i (architecture.md §5.2): conv3x3 stack over all decoded slices."""

from __future__ import annotations

from torch import Tensor, nn

from ..nn import conv3x3


class ChannelContext(nn.Module):
    """ŷ_<i [B, iC, h, w] -> Φ_ch [B, out, h, w] (out = 4C by default).

    conv3x3(in -> hidden[0]) -> GELU -> conv3x3(-> hidden[1]) -> GELU -> conv3x3(-> out).
    """

    def __init__(self, cin: int, cout: int, hidden: tuple[int, int] = (192, 128)) -> None:
        super().__init__()
        self.fusion = nn.Sequential(
            conv3x3(cin, hidden[0]), nn.GELU(),
            conv3x3(hidden[0], hidden[1]), nn.GELU(),
            conv3x3(hidden[1], cout),
        )  # fmt: skip

    def forward(self, decoded: Tensor) -> Tensor:
        return self.fusion(decoded)
