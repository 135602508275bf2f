"""The one coding loop: slices x (anchor, non-anchor), shared by training, compress and decompress.

:func:`run_slices` walks the schedule of architecture.md §6 and asks a *step*
object what the current half of the current slice is worth:

- :class:`QuantizeStep` (training / eval forward): quantises the true latent
  around the predicted means and records scales and means for the likelihoods;
- :class:`EncodeStep`: quantises, turns the symbols of the half into table
  indexes and hands them to one entropy encoder per image;
- :class:`DecodeStep`: reads the same symbols back from the stream.

Every step returns the reconstruction of its half (zeros at the other half),
so the networks downstream see exactly the same tensors in all three modes.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Callable, Protocol

import numpy as np
import torch
from torch import Tensor

from ..coding import SymbolDecoder, SymbolEncoder
from ..entropy import GaussianConditional, quantize
from ..errors import DesyncError
from ..context.checkerboard import ANCHOR, NONANCHOR, keep, squeeze, unsqueeze


class Step(Protocol):
    def __call__(self, i: int, half: str, scales: Tensor, means: Tensor) -> Tensor: ...


def run_slices(model, hyper: Tensor, step: Step, gains=None, on_slice: Callable[[], None] | None = None) -> Tensor:
    """Decode (or quantise) every slice in order; returns ŷ [B, M, h, w].

    ``on_slice``: called after each slice (progress reports; it sees nothing of the data).

    ``gains`` (variable-rate models): :class:`mlic.models.mlic.Gains`, whose ``y`` and ``y_inv``
    ([B or 1, M, 1, 1]) are the latent's gain and inverse gain. The step then
    codes the gained latent ``y * gain`` (the caller builds it so), sees the predicted
    scales and means times the gain, and what it returns is multiplied by the inverse gain:
    the contexts always work on the decoded latent in the model's own units.

    ``model`` provides the per-slice networks (see :class:`mlic.models.MLIC`):
    ``slice_context(i, decoded)`` -> contexts from earlier slices,
    ``anchor_parameters`` / ``nonanchor_parameters`` and the two LRPs.
    """
    m = model.M
    hyper_mu = hyper[:, m:]
    decoded: list[Tensor] = []
    if gains is not None:
        g_slices, ig_slices = (t.split(model.slice_channels, dim=1) for t in (gains.y, gains.y_inv))
        inner = step

        def step(i: int, half: str, scales: Tensor, means: Tensor) -> Tensor:
            g, ig = g_slices[i], ig_slices[i]
            return inner(i, half, scales * g, means * g) * ig

    for i in range(model.slices):
        previous = torch.cat(decoded, dim=1) if decoded else None
        shared = model.slice_context(i, previous)  # Φ_inter, Φ_ch: computed once per slice

        scales, means = model.anchor_parameters(i, shared, hyper)  # zero at the non-anchors
        y_anchor = step(i, ANCHOR, scales, means)
        y_anchor = y_anchor + keep(model.lrp(i, ANCHOR, hyper_mu, previous, y_anchor), ANCHOR)

        prev_slice = decoded[-1] if decoded else None
        scales, means = model.nonanchor_parameters(i, shared, hyper, y_anchor, prev_slice)  # zero at the anchors
        y_slice = y_anchor + step(i, NONANCHOR, scales, means)
        y_slice = y_slice + keep(model.lrp(i, NONANCHOR, hyper_mu, previous, y_slice), NONANCHOR)
        decoded.append(y_slice)
        if on_slice is not None:
            on_slice()
    return torch.cat(decoded, dim=1)


class QuantizeStep:
    """Training and eval forward: ``"ste"`` (STE_round, training and the latent search) or
    ``"round"`` (eval) around the mean."""

    def __init__(self, y: Tensor, slice_channels: int, mode: str) -> None:
        if mode not in ("ste", "round"):
            raise ValueError(f"unknown quantisation mode {mode!r}")
        self.y_slices = y.split(slice_channels, dim=1)
        self.mode = mode
        self.scales: list[Tensor] = []
        self.means: list[Tensor] = []

    def __call__(self, i: int, half: str, scales: Tensor, means: Tensor) -> Tensor:
        if half == ANCHOR:
            self.scales.append(scales)
            self.means.append(means)
        else:  # merge the two halves of slice i
            self.scales[i] = self.scales[i] + scales
            self.means[i] = self.means[i] + means
        return keep(quantize(self.y_slices[i], self.mode, means), half)

    def parameters(self) -> tuple[Tensor, Tensor]:
        """Merged (scales, means) of all slices, [B, M, h, w]."""
        return torch.cat(self.scales, dim=1), torch.cat(self.means, dim=1)


class SymbolChecks:
    """16-bit checksums of the coded symbols, one per group of ``group`` slices (the desync guard).

    Encoder and decoder hash the symbols of every pass in coding order
    (CRC-32 of their int32 little-endian bytes, truncated to 16 bits). A decoder
    whose floating-point results drift from the encoder's decodes different
    symbols from then on; the first group whose checksum differs names where.
    :meth:`digest` is the SHA-256 of all of an image's symbols in coding order (the exact
    part of a decode, which tests compare across machines; it is not stored in files).
    """

    def __init__(self, batch: int, slices: int, group: int) -> None:
        if group < 1:
            raise ValueError("checksum group must be at least one slice")
        self.slices, self.group = slices, group
        self._crc = [0] * batch
        self._sha = [hashlib.sha256() for _ in range(batch)]
        self.values: list[list[int]] = [[] for _ in range(batch)]

    @staticmethod
    def count(slices: int, group: int) -> int:
        return -(-slices // group)

    def start(self, b: int, z_hat: Tensor) -> None:
        """Seed image ``b``'s first checksum with its decoded hyper-latent (format version 2):
        a corrupted z stream then fails the check even where the y symbols survive it."""
        self._crc[b] = zlib.crc32(np.ascontiguousarray(z_hat.detach().cpu().numpy(), dtype="<f4").tobytes())

    def add(self, b: int, symbols: np.ndarray) -> None:
        raw = np.ascontiguousarray(symbols, dtype="<i4").tobytes()
        self._crc[b] = zlib.crc32(raw, self._crc[b])
        self._sha[b].update(raw)

    def digests(self) -> list[str]:
        """Per image: SHA-256 (hex) of every symbol added so far, as little-endian int32."""
        return [h.hexdigest() for h in self._sha]

    def closes_group(self, i: int) -> bool:
        return (i + 1) % self.group == 0 or i == self.slices - 1

    def close(self, b: int) -> int:
        value = self._crc[b] & 0xFFFF
        self._crc[b] = 0
        self.values[b].append(value)
        return value


class EncodeStep:
    """Compress: symbols ``round(y - mu)`` of each half go to one encoder per image."""

    def __init__(self, y: Tensor, slice_channels: int, gaussian: GaussianConditional, check_group: int = 1,
                 z_hat: Tensor | None = None) -> None:
        self.y_slices = y.split(slice_channels, dim=1)
        self.gaussian = gaussian
        self.tables = gaussian.coder_tables()
        self.encoders = [SymbolEncoder() for _ in range(y.shape[0])]
        self.checks = SymbolChecks(y.shape[0], len(self.y_slices), check_group)
        if z_hat is not None:
            for b in range(y.shape[0]):
                self.checks.start(b, z_hat[b])

    def __call__(self, i: int, half: str, scales: Tensor, means: Tensor) -> Tensor:
        mu = squeeze(means, half)
        symbols = torch.round(squeeze(self.y_slices[i], half) - mu)
        indexes = self.gaussian.build_indexes(squeeze(scales, half)).cpu().numpy()
        sym = symbols.to(torch.int64).cpu().numpy()
        for b, enc in enumerate(self.encoders):
            enc.encode(sym[b], indexes[b], self.tables)
            self.checks.add(b, sym[b])
            if half == NONANCHOR and self.checks.closes_group(i):
                self.checks.close(b)
        return unsqueeze(symbols + mu, half)

    def strings(self) -> list[bytes]:
        return [enc.flush() for enc in self.encoders]


class DecodeStep:
    """Decompress: the same symbols, read back from one stream per image.

    With ``checks`` (per image, from :class:`SymbolChecks`), every group is
    verified as soon as it is decoded; a mismatch raises :class:`DesyncError`.
    """

    def __init__(
        self,
        strings: list[bytes],
        gaussian: GaussianConditional,
        slices: int,
        checks: list[list[int]] | None = None,
        check_group: int = 1,
        z_hat: Tensor | None = None,
    ) -> None:
        self.gaussian = gaussian
        self.tables = gaussian.coder_tables()
        self.decoders = [SymbolDecoder(s) for s in strings]
        self.expected = checks
        self.checks = SymbolChecks(len(strings), slices, check_group)
        if checks is not None and any(len(c) != SymbolChecks.count(slices, check_group) for c in checks):
            raise ValueError("wrong number of symbol checksums for this model")
        if z_hat is not None:
            for b in range(len(strings)):
                self.checks.start(b, z_hat[b])

    def finish(self) -> None:
        """Every y stream must be consumed exactly (see :meth:`SymbolDecoder.finish`)."""
        for dec in self.decoders:
            dec.finish("latent (y) stream")

    def __call__(self, i: int, half: str, scales: Tensor, means: Tensor) -> Tensor:
        mu = squeeze(means, half)
        indexes = self.gaussian.build_indexes(squeeze(scales, half)).cpu().numpy()
        symbols = np.stack([dec.decode(indexes[b], self.tables) for b, dec in enumerate(self.decoders)])
        for b in range(len(self.decoders)):
            self.checks.add(b, symbols[b])
            if half == NONANCHOR and self.checks.closes_group(i):
                got = self.checks.close(b)
                if self.expected is not None:
                    g = len(self.checks.values[b]) - 1
                    if got != self.expected[b][g]:
                        first = g * self.checks.group
                        raise DesyncError(
                            f"decoder desynchronised in slices {first}-{i} (image {b}): its predictions differ "
                            "from the encoder's (different platform or numerics); refusing to produce a wrong image"
                        )
        symbols = torch.from_numpy(symbols).to(device=mu.device, dtype=mu.dtype)
        return unsqueeze(symbols + mu, half)
