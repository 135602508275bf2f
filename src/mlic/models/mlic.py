"""MLIC, MLIC+ and MLIC++ as one configurable model (architecture.md §1-§7).

========  ==================  =====================  ====================
model     local context       global inter-slice     global intra-slice
========  ==================  =====================  ====================
MLIC      stacked 5x5 conv    none                   quadratic
MLIC+     window attention    quadratic              quadratic
MLIC++    window attention    linear                 linear
========  ==================  =====================  ====================

Data flow::

    x -> pad to 64 -> g_a -> y -> h_a -> z -> [bottleneck] -> z_hat -> h_s -> hyper
    (hyper, slices decoded so far) -> contexts -> (scale, mean) -> [Gaussian] -> y_hat
    y_hat -> g_s -> x_hat -> crop

The model follows CompressAI's contract: ``forward(x) -> {"x_hat", "likelihoods"}``,
``compress``, ``decompress``, ``update``, ``aux_loss``.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._torch_internals import cpu_has_native_bf16
from ..context.channel import ChannelContext
from ..context.checkerboard import ANCHOR, NONANCHOR, keep, squeeze, unsqueeze
from ..context.global_inter import GlobalInterContext
from ..context.global_intra import GlobalIntraContext
from ..context.local import CheckerboardWindowAttention, StackedCheckerboardConv
from ..context.parameters import EntropyParameters, LatentResidualPrediction
from ..entropy import EntropyBottleneck, GaussianConditional
from ..entropy.quantize import quantize
from ..nn import scale_gradient
from ..nn.inference import make_channels_last_ready
from ..nn.invariant import make_thread_invariant
from .config import PAD, PRECISIONS, QUALITY_SCALE, MLICConfig, coded_geometry, quality_code
from .slices import DecodeStep, EncodeStep, QuantizeStep, run_slices
from .transforms import analysis_transform, hyper_analysis, hyper_synthesis, synthesis_transform

# What the decoder recomputes to find each symbol's table: in float64 when coding (format
# version 3), so that other kernels (AVX2 vs AVX-512, another library build) move its values
# by about 1e-12 instead of 1e-6 and pick the encoder's tables (docs/determinism.md).
PROBABILITY_PATH = ("h_s", "channel_context", "global_inter_context", "global_intra_context", "local_context",
                    "entropy_parameters_anchor", "entropy_parameters_nonanchor", "lrp_anchor", "lrp_nonanchor",
                    "gaussian_conditional")  # fmt: skip
__all__ = ["MLIC", "Gains", "MLICConfig", "QUALITY_SCALE", "native_bf16", "quality_code", "resolve_precision"]


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` has native bf16 kernels (CPU: oneDNN's AVX512-BF16 or AMX ones).

    Elsewhere bf16 is emulated: several times slower than fp32 (6x for g_a + g_s on an AVX2
    CPU), and its pixels differ from a native bf16 CPU's (docs/determinism.md).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``"fp32"`` or ``"bf16"``: what g_a / g_s run in for ``precision`` ("auto": bf16 where native)."""
    if precision not in PRECISIONS:
        raise ValueError(f"transform_precision must be fp32, bf16 or auto, not {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


class Gains(NamedTuple):
    """Gain-unit factors of one quality (variable-rate models): ``y`` before quantisation and
    ``y_inv`` after; ``z`` and ``z_inv`` the same for the hyper-latent (None without z gains)."""

    y: Tensor
    y_inv: Tensor
    z: Tensor | None
    z_inv: Tensor | None


def _pad(x: Tensor) -> Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % PAD, 0, (-h) % PAD))



class MLIC(nn.Module):
    """The MLIC family; build instances with :func:`mlic.models.build`."""

    def __init__(self, config: MLICConfig | None = None) -> None:
        super().__init__()
        cfg = config or MLICConfig()
        self.config = cfg
        N, M, S, C = cfg.N, cfg.M, cfg.slices, cfg.slice_channels
        self.N, self.M, self.slices, self.slice_channels = N, M, S, C

        self.g_a = analysis_transform(cfg.analysis_width, M)
        self.g_s = synthesis_transform(cfg.transform_width, M, legacy=cfg.legacy)
        self.h_a = hyper_analysis(N, M)
        self.h_s = hyper_synthesis(N, M)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional()

        def per_slice(make, first: int = 0) -> nn.ModuleList:
            # Slot i belongs to slice i; slices that do not use a module get an
            # empty placeholder so indices match the official layout.
            return nn.ModuleList([make(i) if i >= first else nn.Identity() for i in range(S)])

        if cfg.local == "window":
            self.local_context = per_slice(lambda i: CheckerboardWindowAttention(C, cfg.local_heads, cfg.window))
        else:
            self.local_context = per_slice(lambda i: StackedCheckerboardConv(C, kernel=cfg.window))
        self.channel_context = per_slice(lambda i: ChannelContext(i * C, 4 * C, cfg.channel_hidden), first=1)
        if cfg.inter is not None:
            self.global_inter_context = per_slice(lambda i: GlobalInterContext(i * C, C, C, cfg.inter), first=1)
        self.global_intra_context = per_slice(
            lambda i: GlobalIntraContext(C, cfg.intra_heads, cfg.intra, cfg.intra_exclusion), first=1
        )

        inter_w = 2 * C if cfg.inter is not None else 0
        anchor_in = lambda i: 2 * M + (inter_w + 4 * C if i else 0)  # noqa: E731
        nonanchor_in = lambda i: 2 * M + 2 * C + (2 * C + inter_w + 4 * C if i else 0)  # noqa: E731
        self.entropy_parameters_anchor = per_slice(lambda i: EntropyParameters(anchor_in(i), C, cfg.params_hidden))
        self.entropy_parameters_nonanchor = per_slice(lambda i: EntropyParameters(nonanchor_in(i), C, cfg.params_hidden))
        lrp = lambda i: LatentResidualPrediction(M + (i + 1) * C, C, cfg.lrp_hidden, cfg.legacy)  # noqa: E731
        self.lrp_anchor = per_slice(lrp)
        self.lrp_nonanchor = per_slice(lrp)
        if cfg.variable_rate:
            # Gain units (Cui et al. 2021), log-parametrised: level l codes y * exp(log_gain[l]) and
            # decodes with exp(log_inverse_gain[l]); a fractional quality interpolates the logs.
            levels = len(cfg.rate_lambdas)
            self.log_gain = nn.Parameter(torch.zeros(levels, M))
            self.log_inverse_gain = nn.Parameter(torch.zeros(levels, M))
            if cfg.z_gains:  # the same for the hyper-latent: z costs what each level can afford
                self.log_z_gain = nn.Parameter(torch.zeros(levels, N))
                self.log_z_inverse_gain = nn.Parameter(torch.zeros(levels, N))
        # Everything that feeds the probability path must give the same bits whatever the
        # thread count; only g_a (encoder side) and g_s (after decoding) are exempt.
        for name, child in self.named_children():
            if name not in ("g_a", "g_s"):
                make_thread_invariant(child)
            else:  # inference keeps a channels-last copy of each weight (mlic.nn.inference)
                make_channels_last_ready(child)
        # channels_last only without autograd (see _layout): NHWC inputs make oneDNN's bf16
        # convolutions 20-30 % faster here, but torch 2.13's CPU convolution backward corrupts
        # the heap when input and weight formats differ (reproduced with two strided convs
        # sharing a 3-channel input), so training keeps NCHW.
        # Precision of g_a and g_s only (never the probability path): "fp32", "bf16" or "auto"
        # (bf16 where the hardware has native bf16 kernels). bf16 is ~2x faster here; its
        # decodes differ from fp32 ones by a level or two in about a quarter of the values
        # (about 0.02 dB of PSNR; docs/determinism.md), never in the decoded symbols.
        self.transform_precision = "auto"
        self.half_parameters = True  # entropy parameters on the current checkerboard half only
        # Training only: the share of the z rate's gradient that reaches h_a and g_a (``--z-warmup``
        # ramps it from 0 to 1). The density still learns from the whole z rate, and the loss
        # counts every bit; below 1, the hyper-latent is cheap for the encoder while the entropy
        # model learns to use it (the collapse it prevents: docs/models.md, "Entropy-model health").
        self.z_rate_weight = 1.0

    # -- variable rate ---------------------------------------------------------
    def check_quality(self, quality: float) -> float:
        """``quality`` rounded to the 1/256 steps a file can record; ValueError outside the range."""
        if not self.config.variable_rate:
            raise ValueError(f"{self.config.name} weights have one rate; a quality needs a variable-rate model")
        low, high = self.config.quality_range
        if not (isinstance(quality, (int, float)) and math.isfinite(quality) and low <= quality <= high):
            raise ValueError(f"quality must lie in {low}-{high} for these weights, not {quality!r}")
        return quality_code(quality) / QUALITY_SCALE

    def _level(self, quality: float) -> tuple[int, float]:
        pos = quality - self.config.first_quality
        lo = min(int(math.floor(pos)), len(self.config.rate_lambdas) - 2)
        return lo, pos - lo

    def rate_lambda(self, quality: float) -> float:
        """The trade-off a quality stands for: the level lambdas, interpolated geometrically."""
        lo, t = self._level(self.check_quality(quality))
        lam = self.config.rate_lambdas
        return math.exp((1 - t) * math.log(lam[lo]) + t * math.log(lam[lo + 1]))

    def gain_parameters(self) -> list[Tensor]:
        """The log-gain tables, in the order of :class:`Gains`' fields."""
        names = ["log_gain", "log_inverse_gain"] + (["log_z_gain", "log_z_inverse_gain"] if self.config.z_gains else [])
        return [getattr(self, n) for n in names]

    def rate_gains(self, quality, dtype: torch.dtype = torch.float32) -> "Gains | None":
        """The :class:`Gains` ([B or 1, C, 1, 1] each) for ``quality``; None for a one-rate model.

        A number (what files record, rounded to 1/256) is computed in float64 with Python's
        scalar ``math`` functions, so encoder and decoder get the same values on any CPU; a
        tensor of per-image qualities (training) stays differentiable.
        """
        if not self.config.variable_rate:
            if quality is not None:
                raise ValueError(f"{self.config.name} weights have one rate; a quality needs a variable-rate model")
            return None
        if quality is None:
            raise ValueError("a variable-rate model needs a quality")
        device = self.log_gain.device
        tables = self.gain_parameters()
        if isinstance(quality, Tensor):
            pos = quality.to(device=device, dtype=self.log_gain.dtype) - self.config.first_quality
            lo = pos.floor().clamp(0, len(self.config.rate_lambdas) - 2)
            t = (pos - lo)[:, None]
            lo = lo.long()
            out = [(p[lo] * (1 - t) + p[lo + 1] * t).exp().to(dtype)[:, :, None, None] for p in tables]
        else:
            lo, t = self._level(self.check_quality(float(quality)))
            out = []
            for p in tables:
                a, b = p[lo].detach().double().cpu().tolist(), p[lo + 1].detach().double().cpu().tolist()
                g = [math.exp((1 - t) * u + t * v) for u, v in zip(a, b)]
                out.append(torch.tensor(g, dtype=torch.float64).to(device=device, dtype=dtype).view(1, -1, 1, 1))
        return Gains(*out) if len(out) == 4 else Gains(*out, None, None)

    def _hyper_in(self, z_hat: Tensor, gains: "Gains | None") -> Tensor:
        """What h_s reads: the decoded hyper-latent in the model's units (inverse z gain applied)."""
        return z_hat if gains is None or gains.z_inv is None else z_hat * gains.z_inv.to(z_hat.dtype)

    @contextlib.contextmanager
    def probability_dtype(self, dtype: torch.dtype):
        """Run the probability path (``PROBABILITY_PATH``) in ``dtype`` inside the block: its
        parameters are cast there and back (float32 -> float64 -> float32 is exact)."""
        if dtype == torch.float32:
            yield
            return
        modules = [getattr(self, name) for name in PROBABILITY_PATH if hasattr(self, name)]
        try:
            for m in modules:
                m.to(dtype)
            yield
        finally:
            for m in modules:
                m.float()

    # -- transforms (not on the probability path: may run in bf16) -------------
    def _transform_context(self, x: Tensor):
        if resolve_precision(self.transform_precision, x.device) == "bf16":
            return torch.autocast(x.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @staticmethod
    def _layout(x: Tensor) -> Tensor:
        """NHWC for inference on CPU (20-30 % faster g_a / g_s), NCHW whenever autograd records
        (a channels-last input with NCHW weights corrupts torch 2.13's CPU conv backward)."""
        if x.device.type == "cpu" and not torch.is_grad_enabled():
            return x.contiguous(memory_format=torch.channels_last)
        return x.contiguous()

    def analysis(self, x: Tensor) -> Tensor:
        """g_a on the padded image, in ``transform_precision``; returns fp32 NCHW y.

        Only the encoder runs g_a, so its precision and layout change which symbols
        are chosen, never whether the decoder can follow.
        """
        x = self._layout(_pad(x))
        with self._transform_context(x):
            y = self.g_a(x)
        return y.float().contiguous()

    def synthesis(self, y_hat: Tensor) -> Tensor:
        """g_s in ``transform_precision``; returns fp32 NCHW x_hat (padded size).

        After the probability path: its layout and precision move pixels by a level or two
        in places (docs/determinism.md), never which symbols are decoded.
        """
        with self._transform_context(y_hat):
            x_hat = self.g_s(self._layout(y_hat))
        return x_hat.float().contiguous()

    # -- the per-slice networks used by run_slices -------------------------------
    def slice_context(self, i: int, previous: Tensor | None) -> list[Tensor]:
        """Contexts from the slices already decoded, in concatenation order: [Φ_inter, Φ_ch]."""
        if previous is None:
            return []
        ctx = [self.channel_context[i](previous)]
        if self.config.inter is not None:
            ctx.insert(0, self.global_inter_context[i](previous))
        return ctx

    def _half_parameters(self, net: EntropyParameters, ctx: Tensor, half: str) -> tuple[Tensor, Tensor]:
        """(scales, means) at ``half``, zero at the other half.

        The entropy-parameter network is 1x1 convolutions only, so it runs on the squeezed
        half (half the FLOPs). ``half_parameters = False`` is the reference path (the full
        grid, then masked); tests check both give the same bits (matrix products here
        reduce each output independently of the number of positions, for latents of at
        least 4x4, which the 64-pixel padding guarantees).
        """
        if self.half_parameters:
            scales, means = net(squeeze(ctx, half))
            return unsqueeze(scales, half), unsqueeze(means, half)
        scales, means = net(ctx)
        return keep(scales, half), keep(means, half)

    def anchor_parameters(self, i: int, shared: list[Tensor], hyper: Tensor) -> tuple[Tensor, Tensor]:
        return self._half_parameters(self.entropy_parameters_anchor[i], torch.cat([*shared, hyper], dim=1), ANCHOR)

    def nonanchor_parameters(
        self, i: int, shared: list[Tensor], hyper: Tensor, y_anchor: Tensor, prev_slice: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        net, local = self.entropy_parameters_nonanchor[i], self.local_context[i]
        if not self.half_parameters:  # reference path: full grid, then masked
            ctx = [local(y_anchor)]
            if prev_slice is not None:
                ctx.append(self.global_intra_context[i](prev_slice, y_anchor))
            return self._half_parameters(net, torch.cat([*ctx, *shared, hyper], dim=1), NONANCHOR)
        # squeezed non-anchor half; the window attention computes only the windows centred there
        ctx = [local(y_anchor, NONANCHOR)]
        if prev_slice is not None:
            ctx.append(squeeze(self.global_intra_context[i](prev_slice, y_anchor), NONANCHOR))
        ctx += [squeeze(t, NONANCHOR) for t in (*shared, hyper)]
        scales, means = net(torch.cat(ctx, dim=1))
        return unsqueeze(scales, NONANCHOR), unsqueeze(means, NONANCHOR)

    def lrp(self, i: int, half: str, hyper_mu: Tensor, previous: Tensor | None, partial: Tensor) -> Tensor:
        parts = [hyper_mu] + ([previous] if previous is not None else []) + [partial]
        net = self.lrp_anchor[i] if half == ANCHOR else self.lrp_nonanchor[i]
        return net(torch.cat(parts, dim=1))

    # -- CompressAI contract ---------------------------------------------------
    def forward(self, x: Tensor, quality=None) -> dict:
        """Training / evaluation pass: ``{"x_hat", "likelihoods": {"y", "z"}, "y_hat", "z_hat"}``.

        Inputs of any size are padded right/bottom to a multiple of 64 and
        ``x_hat`` is cropped back; likelihoods cover the padded latents. ``quality``: for a
        variable-rate model, a number or a tensor of one quality per image.
        """
        return self.forward_latent(self.analysis(x), tuple(x.shape[-2:]), "train" if self.training else "eval",
                                   quality)  # fmt: skip

    def forward_latent(self, y: Tensor, size: tuple[int, int], mode: str, quality=None) -> dict:
        """The rate-distortion pass from a latent ``y`` (of the image padded from ``size``).

        ``mode``:
        - ``"train"``: additive noise for the likelihoods, STE rounding for what g_s and the
          contexts see (the training forward);
        - ``"eval"``: rounding everywhere, no gradients through the rounding;
        - ``"search"``: rounding everywhere (the values and likelihoods are exactly those of
          the coded file) with straight-through gradients to ``y``; used by the
          encoder-side latent search (:func:`mlic.models.refine.refine_latent`).
        """
        if mode not in ("train", "eval", "search"):
            raise ValueError(f"unknown pass mode {mode!r}")
        h, w = size
        gains = self.rate_gains(quality, y.dtype)
        z = self.h_a(y)
        if gains is not None and gains.z is not None:
            z = z * gains.z  # what is quantised and coded
        z_rate = z
        if mode == "train" and self.z_rate_weight != 1.0:
            z_rate = scale_gradient(z, self.z_rate_weight)
        _, z_likelihoods = self.entropy_bottleneck(z_rate, training=mode == "train")
        z_hat = quantize(z, "round" if mode == "eval" else "ste", self._z_median(z))
        hyper = self.h_s(self._hyper_in(z_hat, gains))
        y_coded = y if gains is None else y * gains.y  # what is quantised and coded
        step = QuantizeStep(y_coded, self.slice_channels, "round" if mode == "eval" else "ste")
        y_hat = run_slices(self, hyper, step, gains)
        scales, means = step.parameters()
        if mode == "search":
            y_likelihoods = self.gaussian_conditional.likelihood(quantize(y_coded, "ste", means), scales, means)
        else:
            _, y_likelihoods = self.gaussian_conditional(y_coded, scales, means, training=mode == "train")
        x_hat = self.synthesis(y_hat)[..., :h, :w]
        # z_hat: the coded hyper-latent (before any inverse z gain: its values are the symbols + medians)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}, "y_hat": y_hat, "z_hat": z_hat}

    def _z_median(self, z: Tensor) -> Tensor:
        return self.entropy_bottleneck.medians().view(1, -1, 1, 1).to(z.dtype)

    def update(self, force: bool = False) -> bool:
        """Build the coding tables of both entropy models; call after training or loading."""
        a = self.entropy_bottleneck.update(force=force)
        b = self.gaussian_conditional.update(force=force)
        return a or b

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.aux_loss()

    def default_check_group(self) -> int:
        """Slices per desync checksum: at most four 16-bit checks per image."""
        return -(-self.slices // 4)

    @torch.no_grad()
    def compress(self, x: Tensor, check_group: int | None = None, z_in_checks: bool = True, y: Tensor | None = None,
                 probability_dtype: torch.dtype = torch.float64, quality: float | None = None,
                 progress: Callable[[], None] | None = None) -> dict:
        """Entropy-code a batch.

        Returns ``{"strings": [y_strings, z_strings], "shape": z size, "image_size": (H, W),
        "checks": per-image symbol checksums, "check_group": slices per checksum, "y_hat"
        (in ``probability_dtype``), "symbols_sha256": per image, the SHA-256 of its y symbols in
        coding order}``. One y string per image holds every slice, anchors before non-anchors
        (§6.3); one z string per image. ``z_in_checks`` seeds the first checksum
        with the decoded hyper-latent (format version 2; False reproduces version 1).
        ``y``: the latent to code instead of ``g_a(x)`` (from :func:`mlic.models.refine.refine_latent`);
        the decoder needs nothing to know. ``probability_dtype``: float64 (format version 3)
        or float32 (versions 1 and 2); the decoder must use the same. ``quality``: for a variable-rate
        model (rounded to 1/256 as files record it); the decoder needs the same. ``progress``: called
        once after g_a and once after each slice (``slices + 1`` calls; a progress bar's tick).
        """
        h, w = x.shape[-2:]
        if y is None:
            y = self.analysis(x)
        elif y.shape[-2:] != coded_geometry(h, w)[0] or y.shape[:2] != (x.shape[0], self.M):
            raise ValueError(f"latent of shape {tuple(y.shape)} does not belong to an image of {h}x{w}")
        if progress is not None:
            progress()
        z = self.h_a(y)
        gains = self.rate_gains(quality, probability_dtype)
        if gains is not None and gains.z is not None:
            z = z * gains.z.float()  # the encoder's choice of z symbols (any precision decodes them)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:]).to(z.dtype)
        group = check_group or self.default_check_group()
        with self.probability_dtype(probability_dtype):
            hyper = self.h_s(self._hyper_in(z_hat.to(probability_dtype), gains))
            y_coded = y.to(probability_dtype) if gains is None else y.to(probability_dtype) * gains.y
            step = EncodeStep(y_coded, self.slice_channels, self.gaussian_conditional, group,
                              z_hat if z_in_checks else None)  # fmt: skip
            y_hat = run_slices(self, hyper, step, gains, on_slice=progress)
        return {
            "strings": [step.strings(), z_strings],
            "shape": tuple(z.shape[-2:]),
            "image_size": (h, w),
            "checks": step.checks.values,
            "check_group": group,
            "y_hat": y_hat,
            "symbols_sha256": step.checks.digests(),
        }

    @torch.no_grad()
    def decompress(
        self,
        strings: list,
        shape: tuple[int, int],
        image_size: tuple[int, int] | None = None,
        checks: list[list[int]] | None = None,
        check_group: int | None = None,
        z_in_checks: bool = True,
        probability_dtype: torch.dtype = torch.float64,
        quality: float | None = None,
        progress: Callable[[], None] | None = None,
    ) -> dict:
        """Inverse of :meth:`compress`: ``{"x_hat", "y_hat", "symbols_sha256"}``; ``x_hat`` cropped
        to ``image_size``; ``symbols_sha256`` as in :meth:`compress` (equal when decoding is exact).
        ``progress``: called after each slice and once after g_s (``slices + 1`` calls).

        With ``checks`` (from :meth:`compress`), the decoded symbols are verified
        group by group and :class:`mlic.errors.DesyncError` is raised on a mismatch.
        """
        y_strings, z_strings = strings
        z_hat = self.entropy_bottleneck.decompress(z_strings, tuple(shape))
        step = DecodeStep(y_strings, self.gaussian_conditional, self.slices, checks,
                          check_group or self.default_check_group(), z_hat if z_in_checks else None)  # fmt: skip
        with self.probability_dtype(probability_dtype):
            gains = self.rate_gains(quality, probability_dtype)
            y_hat = run_slices(self, self.h_s(self._hyper_in(z_hat.to(probability_dtype), gains)), step, gains,
                               on_slice=progress)  # fmt: skip
        step.finish()
        x_hat = self.synthesis(y_hat.float())
        if progress is not None:
            progress()
        if image_size is not None:
            x_hat = x_hat[..., : image_size[0], : image_size[1]]
        return {"x_hat": x_hat, "y_hat": y_hat, "symbols_sha256": step.checks.digests()}
