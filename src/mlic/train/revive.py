"""Bring dead hyper-latent channels back without changing what the model computes.

A z channel dies when the rate term squeezes it to a constant early in training, while the
entropy model cannot yet use it (docs/models.md, "Entropy-model health"). Then its learned
density becomes a spike: symbol 0 costs nothing and +-1 costs about 30 bits (the likelihood
floor), so every attempt to move it costs more than it can save, and training alone never
brings it back. :func:`revive_hyperprior` restarts each dead channel so that

- h_a's last convolution writes it with a standard deviation of about ``target_std`` (its row
  is scaled and centred: the channel keeps its features, now above the rounding; a row with no
  signal at all gets random ones);
- its density in the bottleneck starts again, fitted to its new values (no 30-bit symbols);
- h_s's first convolution ignores it (zero input weights), so the model's predictions, and
  hence its rate and distortion, are unchanged until training teaches h_s to read it.

Train afterwards with ``--z-warmup`` so that the rate of z does not kill the channels again
before h_s has learnt to use them (``mlic train --init W --revive-z --z-warmup N``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..models.health import ACTIVE_SHARE, varying_share

__all__ = ["dead_z_channels", "fit_density", "revive_hyperprior"]


@torch.no_grad()
def _z_statistics(model, batches: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Per z channel: share of varying symbols (:func:`varying_share`), mean and standard deviation of z."""
    zs = []
    for x in batches:
        zs.append(model.h_a(model.analysis(x)).transpose(0, 1).reshape(model.N, -1))
    z = torch.cat(zs, dim=1)
    medians = model.entropy_bottleneck.medians().view(-1, 1)
    varying = varying_share(torch.round(z - medians).transpose(0, 1))
    return varying, z.mean(dim=1), z.std(dim=1)


def dead_z_channels(model, batches: list[Tensor]) -> Tensor:
    """Boolean [N]: the z channels with fewer than ``ACTIVE_SHARE`` varying symbols on ``batches``."""
    return _z_statistics(model, batches)[0] < ACTIVE_SHARE


@torch.no_grad()
def revive_hyperprior(model, batches: list[Tensor], target_std: float = 0.5, max_gain: float = 1000.0) -> list[int]:
    """Restart the dead z channels of ``model`` (measured on ``batches``); returns their indexes."""
    was_training = model.training
    model.eval()
    varying, mean, std = _z_statistics(model, batches)
    dead = (varying < ACTIVE_SHARE).nonzero().flatten().tolist()
    last, first = model.h_a[-1], model.h_s[0]
    flat = [c for c in dead if float(std[c]) < 1e-6]  # a row with no signal left: new random features
    if flat:
        fan_in = last.weight[0].numel()
        for c in flat:
            last.weight[c] = torch.randn_like(last.weight[c]) / math.sqrt(fan_in)
        _, mean, std = _z_statistics(model, batches)
    model.train(was_training)
    eb = model.entropy_bottleneck
    medians = eb.medians().clone()
    for c in dead:
        gain = min(target_std / max(float(std[c]), 1e-12), max_gain)
        last.weight[c] *= gain
        if last.bias is not None:
            last.bias[c] = (last.bias[c] - mean[c]) * gain
        # what the constant channel added to h_s's first layer (exact away from the borders)
        constant = float(torch.round(mean[c] - medians[c]) + medians[c])
        first.bias += first.weight[:, c].sum(dim=(1, 2)) * constant
        first.weight[:, c] = 0.0
    if dead:
        eb.reset_density(dead)  # the wide initial density, then fitted to the new values
        fit_density(model, batches, dead)
    return dead  # the bottleneck's coding tables are stale now: update(force=True) before coding


def fit_density(model, batches: list[Tensor], channels: list[int], steps: int = 300, lr: float = 1e-2) -> None:
    """Fit the bottleneck's density (and quantiles) of ``channels`` to their values on ``batches``,
    the other channels untouched: a restarted channel then costs what its values are worth from
    the first step, not the ~4 bits a symbol of the wide initial density."""
    eb = model.entropy_bottleneck
    with torch.no_grad():
        was_training = model.training
        model.eval()
        z = torch.cat([model.h_a(model.analysis(x)) for x in batches])
        model.train(was_training)
    mask = torch.zeros(eb.channels, 1, 1)
    mask[channels] = 1.0
    density = [*eb.matrices, *eb.biases, *eb.factors]
    saved = [p.detach().clone() for p in density] + [eb.quantiles.detach().clone()]
    opt = torch.optim.Adam(density, lr=lr)
    aux = torch.optim.Adam([eb.quantiles], lr=lr * 10)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            bits = -torch.log2(eb.likelihood(z + torch.empty_like(z).uniform_(-0.5, 0.5)))
            (bits.mean(dim=(0, 2, 3)) * mask.flatten()).sum().backward()
            opt.step()
            aux.zero_grad()
            eb.aux_loss().backward()
            aux.step()
    with torch.no_grad():  # only the chosen channels move
        for p, old in zip([*density, eb.quantiles], saved):
            p.copy_(torch.where(mask.view(-1, *([1] * (p.dim() - 1))).bool(), p, old))
