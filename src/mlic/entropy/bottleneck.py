"""Factorized entropy bottleneck for the hyper-latent z (Balle et al., ICLR 2018, appendix 6.1).

Each channel has its own univariate density, defined through a learned,
monotonic cumulative function ``c(x) = sigmoid(f(x))`` where ``f`` is a small
per-channel network (``filters`` hidden widths; matrices pass through softplus
so ``f`` is increasing). The probability of an integer bin is
``c(x + 1/2) - c(x - 1/2)``.

Three per-channel ``quantiles`` (the ``tail_mass / 2`` lower tail, the median,
the upper tail) are learned by :meth:`aux_loss`. The median is the
quantisation offset: symbols are ``round(z - median)``. The tails bound the
range of the coding tables built by :meth:`update`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..coding import SymbolDecoder, SymbolEncoder
from ..nn import lower_bound
from .base import TabledEntropyModel
from .quantize import quantize
from ..coding.tables import quantize_pmf


class EntropyBottleneck(TabledEntropyModel):
    """Factorized prior over ``channels`` channels.

    Args:
        channels: number of channels of z.
        filters: hidden widths of the per-channel density network.
        init_scale: initial width of the density (and of the quantile range).
        tail_mass: probability mass left outside the coding tables' range.
        likelihood_bound: lower bound on returned likelihoods.

    Parameter names (``matrices.i``, ``biases.i``, ``factors.i``, ``quantiles``)
    follow CompressAI's so that published checkpoints map one to one.
    """

    def __init__(
        self,
        channels: int,
        filters: tuple[int, ...] = (3, 3, 3, 3),
        init_scale: float = 10.0,
        tail_mass: float = 1e-9,
        likelihood_bound: float = 1e-9,
    ) -> None:
        super().__init__(likelihood_bound)
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.init_scale = float(init_scale)
        self.tail_mass = float(tail_mass)

        widths = (1,) + self.filters + (1,)
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.filters) + 1):
            self.matrices.append(nn.Parameter(torch.empty(channels, widths[i + 1], widths[i])))
            self.biases.append(nn.Parameter(torch.empty(channels, widths[i + 1], 1)))
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.empty(channels, widths[i + 1], 1)))
        self.quantiles = nn.Parameter(torch.empty(channels, 1, 3))
        self.reset_density()
        t = math.log(2.0 / self.tail_mass - 1.0)
        self.register_buffer("target", torch.tensor([-t, 0.0, t]))

    @torch.no_grad()
    def reset_density(self, channels: list[int] | None = None) -> None:
        """The initial density (and quantiles) for ``channels`` (all if None): a wide bump of width
        about ``init_scale``. Used at construction and to restart dead channels
        (:func:`mlic.train.revive.revive_hyperprior`); coding tables are stale afterwards."""
        widths = (1,) + self.filters + (1,)
        scale = self.init_scale ** (1.0 / (len(self.filters) + 1))
        for rows in [slice(None)] if channels is None else [[c] for c in channels]:  # one channel at a time
            for i, matrix in enumerate(self.matrices):
                # softplus(init) = 1 / (scale * fan_out): the initial density is a wide bump.
                matrix[rows] = math.log(math.expm1(1.0 / scale / widths[i + 1]))
                bias = self.biases[i]
                bias[rows] = torch.empty_like(bias[rows]).uniform_(-0.5, 0.5)
            for factor in self.factors:
                factor[rows] = 0.0
            self.quantiles[rows] = torch.tensor([-self.init_scale, 0.0, self.init_scale])

    # -- density ---------------------------------------------------------
    def _logits_cumulative(self, x: Tensor, detach: bool = False) -> Tensor:
        """``f(x)`` for ``x`` of shape [C, 1, n]; ``detach`` freezes the density parameters."""
        logits = x
        for i, matrix in enumerate(self.matrices):
            m, b = matrix, self.biases[i]
            if detach:
                m, b = m.detach(), b.detach()
            logits = torch.matmul(F.softplus(m), logits) + b
            if i < len(self.factors):
                f = self.factors[i].detach() if detach else self.factors[i]
                logits = logits + torch.tanh(f) * torch.tanh(logits)
        return logits

    def _channel_major(self, z: Tensor) -> tuple[Tensor, tuple]:
        """[B, C, *] -> [C, 1, B * prod(*)], and what is needed to undo it."""
        perm_shape = z.transpose(0, 1).shape
        return z.transpose(0, 1).reshape(self.channels, 1, -1), perm_shape

    def likelihood(self, values: Tensor) -> Tensor:
        """Probability of the unit bin around each element of ``values`` ([B, C, ...])."""
        v, shape = self._channel_major(values)
        lower = self._logits_cumulative(v - 0.5)
        upper = self._logits_cumulative(v + 0.5)
        # Evaluate on the side of the median where the sigmoids are far from 1 (precision).
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        lik = lik.reshape(shape).transpose(0, 1)
        return lower_bound(lik, self.likelihood_bound)

    def medians(self) -> Tensor:
        """Per-channel quantisation offsets, [C] (detached: they move only through aux_loss)."""
        return self.quantiles[:, 0, 1].detach()

    def _median_like(self, z: Tensor) -> Tensor:
        return self.medians().reshape((1, -1) + (1,) * (z.dim() - 2))

    def aux_loss(self) -> Tensor:
        """Pulls the quantiles to ``f^-1`` of the tail targets; optimise with its own optimiser."""
        logits = self._logits_cumulative(self.quantiles, detach=True)
        return torch.abs(logits - self.target).sum()

    def fit_quantiles(self, steps: int = 5000, lr: float = 1e-2, tolerance: float = 1e-3) -> float:
        """Settle the quantiles on the current density (only they move; no data is needed):
        Adam on :meth:`aux_loss` until it is below ``tolerance`` per quantile or ``steps`` are
        spent. Returns the final aux loss. Training's own aux optimiser can lag behind a density
        that moves fast; tables built from lagging quantiles cut the range of z symbols."""
        with torch.enable_grad():
            opt = torch.optim.Adam([self.quantiles], lr=lr)
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                loss = self.aux_loss()
                if loss.detach().item() < tolerance * self.quantiles.numel():
                    break
                loss.backward()
                opt.step()
        return float(self.aux_loss().detach())

    # -- training / evaluation forward ----------------------------------
    def forward(self, z: Tensor, training: bool | None = None) -> tuple[Tensor, Tensor]:
        """Returns ``(z_rate, likelihoods)``: noisy z in training, ``round(z - m) + m`` otherwise."""
        training = self.training if training is None else training
        z_rate = quantize(z, "noise") if training else quantize(z, "round", self._median_like(z))
        return z_rate, self.likelihood(z_rate)

    # -- tables and coding ----------------------------------------------
    @torch.no_grad()
    def update(self, force: bool = False) -> bool:
        """Build the integer CDF tables from the current density. Returns True if rebuilt."""
        if self.has_tables and not force:
            return False
        q = self.quantiles.detach()
        medians = q[:, 0, 1]
        minima = torch.clamp(torch.ceil(medians - q[:, 0, 0]), min=0).to(torch.int64)
        maxima = torch.clamp(torch.ceil(q[:, 0, 2] - medians), min=0).to(torch.int64)
        span = int((minima + maxima).max().item()) + 1
        grid = torch.arange(span, dtype=q.dtype, device=q.device)
        samples = (grid[None, :] - minima[:, None].to(q.dtype) + medians[:, None]).unsqueeze(1)  # [C, 1, span]
        lower = self._logits_cumulative(samples - 0.5)
        upper = self._logits_cumulative(samples + 0.5)
        sign = -torch.sign(lower + upper)
        pmf = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))[:, 0, :]
        lo_tail = torch.sigmoid(lower[:, 0, :1])[:, 0]
        hi_tail = torch.sigmoid(-upper[:, 0, :])
        cdfs, offsets = [], []
        for c in range(self.channels):
            n = int(minima[c] + maxima[c]) + 1
            tail = float(lo_tail[c]) + float(hi_tail[c, n - 1])
            cdfs.append(quantize_pmf(pmf[c, :n].double().cpu().numpy(), tail))
            offsets.append(-int(minima[c]))
        self._set_tables(cdfs, offsets)
        return True

    def _symbols(self, z: Tensor) -> Tensor:
        return torch.round(z - self._median_like(z)).to(torch.int64)

    def _indexes(self, shape: torch.Size) -> np.ndarray:
        idx = np.arange(self.channels, dtype=np.int64).reshape((1, -1) + (1,) * (len(shape) - 2))
        return np.broadcast_to(idx, tuple(shape))

    def compress(self, z: Tensor) -> list[bytes]:
        """One byte string per batch item: symbols ``round(z - median)``, table = channel."""
        tables = self.coder_tables()
        symbols = self._symbols(z).cpu().numpy()
        strings = []
        for b in range(z.shape[0]):
            enc = SymbolEncoder()
            enc.encode(symbols[b], self._indexes(z[b : b + 1].shape)[0], tables)
            strings.append(enc.flush())
        return strings

    def decompress(self, strings: list[bytes], size: tuple[int, ...]) -> Tensor:
        """Inverse of :meth:`compress`: ``z_hat = symbols + median``, shape [B, C, *size]."""
        tables = self.coder_tables()
        shape = (1, self.channels) + tuple(size)
        out = []
        for s in strings:
            dec = SymbolDecoder(s)
            out.append(torch.from_numpy(dec.decode(self._indexes(shape)[0], tables)))
            dec.finish("hyper-latent (z) stream")
        symbols = torch.stack(out).to(self.quantiles.device, torch.float32)
        return symbols + self._median_like(symbols)
