"""Encoding to a target: a file size (bytes or bits per pixel) or a PSNR, with a variable-rate model.

:func:`compress_to_target` searches the quality, in the 1/256 steps a file records:

1. **Narrow with the estimate.** ``g_a`` runs once per tile; the entropy model's estimate of the
   size (and of the PSNR) at a quality comes from :meth:`MLIC.forward_latent` on that latent,
   and a bisection on it gives a first quality.
2. **Finish on real files.** Each candidate is encoded for real (and decoded, for a PSNR target).
   The ratio of real to estimated size corrects the estimate for the next guess; the bracket of
   real results keeps the search safe. A size target is never exceeded: the result is the
   largest file found within it, which lands within :data:`SIZE_TOLERANCE` under it whenever the
   quality range allows. A PSNR target is met or exceeded with the smallest file found.

Targets beyond the model's range are answered at the end of the range (with a note), or refused
when no quality can meet them (a size below the smallest file, a PSNR above the best).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .codec import DEFAULT_TILE, _tile_side, compress_image, decompress_bytes
from .errors import MlicError
from .eval.metrics import psnr_rgb
from .io.container import Header
from .io.image import ImageData
from .io.tensor import rgb_to_tensor
from .models.mlic import QUALITY_SCALE

SIZE_TOLERANCE = 0.07  # a size target is met from below within 7 % when the range allows
PSNR_TOLERANCE = 0.1  # dB above a PSNR target that ends the search early
MAX_ENCODES = 8  # real encodes per search, at most


class TargetError(MlicError):
    """No quality of the model meets the target."""


@dataclass
class TargetResult:
    data: bytes
    quality: float
    psnr: float | None  # of the real file (PSNR targets only)
    encodes: int  # real encodes spent
    note: str = ""  # set when the target lies outside what the range reaches


class _Estimate:
    """Estimated size (bytes) and PSNR of ``image`` at a quality, from one ``g_a`` pass per tile."""

    def __init__(self, model, image: ImageData, tile: int) -> None:
        self.model = model
        header = Header(model.config.name, "mse", 0, b"\0" * 8, image.height, image.width, image.layout,
                        image.bit_depth, 0, _tile_side(image.height, image.width, tile), 1)  # fmt: skip
        self.tiles = []
        with torch.no_grad():
            for top, left, th, tw in header.tiles():
                x = rgb_to_tensor(image.rgb[top : top + th, left : left + tw])
                self.tiles.append((x, model.analysis(x)))
        self.pixels = image.height * image.width
        self.cache: dict[int, tuple[float, float]] = {}

    def __call__(self, code: int, need_psnr: bool) -> tuple[float, float]:
        if code not in self.cache or (need_psnr and math.isnan(self.cache[code][1])):
            bits = sq_err = 0.0
            with torch.no_grad():
                for x, y in self.tiles:
                    out = self.model.forward_latent(y, tuple(x.shape[-2:]), "eval", code / QUALITY_SCALE)
                    bits += sum(-torch.log2(v.double()).sum().item() for v in out["likelihoods"].values())
                    if need_psnr:
                        x_hat = out["x_hat"].clamp(0, 1).mul(255).round()
                        sq_err += (x_hat - x.mul(255).round()).double().pow(2).sum().item()
            psnr = 10 * math.log10(255**2 * 3 * self.pixels / max(sq_err, 1e-9)) if need_psnr else math.nan
            self.cache[code] = (bits / 8, psnr)
        return self.cache[code]


ESTIMATE_STEP = QUALITY_SCALE // 32  # the estimate is searched in 1/32 quality steps


def _bisect(lo: int, hi: int, ok, step: int = ESTIMATE_STEP) -> int:
    """The largest code on the grid ``lo + k * step`` (and ``hi``) with ok(code), ok monotone
    (true, then false); lo if none."""
    grid = list(range(lo, hi, step)) + [hi]
    a, b = 0, len(grid) - 1
    while a < b:
        mid = (a + b + 1) // 2
        if ok(grid[mid]):
            a = mid
        else:
            b = mid - 1
    return grid[a]


def _first_meeting(low: int, high: int, short) -> int:
    """The first grid code that is not ``short`` (``short`` monotone: true, then false): ``low``
    when even ``low`` is not short."""
    last_short = _bisect(low, high, short)
    return low if last_short == low and not short(low) else min(last_short + ESTIMATE_STEP, high)


def _real_search(first: int, ok, close_enough, next_guess, low: int, high: int, prefer_high: bool):
    """Real encodes from ``first``, inside the bracket of what they showed: ``(best, bad)``, the
    best code meeting the target (the highest if ``prefer_high``, else the lowest) and the nearest
    code on the other side of it (None when not found). Stops when ``close_enough(best)``, when
    best is the end of the range it prefers, when even the other end fails (``bad`` is then that
    end and ``best`` None), when the bracket closes, or after :data:`MAX_ENCODES` codes.
    ``ok`` is monotone in the code; ``next_guess(code, lo, hi)`` proposes the next code in [lo, hi]."""
    best = bad = None
    beyond = (lambda a, b: a > b) if prefer_high else (lambda a, b: a < b)  # a is further the preferred way
    code = first
    for _ in range(MAX_ENCODES):
        code = min(max(code, low), high)
        if ok(code):
            best = code if best is None or beyond(code, best) else best
        else:
            bad = code if bad is None or beyond(bad, code) else bad
        if best is not None and (close_enough(best) or best == (high if prefer_high else low)):
            break
        if bad == (low if prefer_high else high):
            break
        below, above = (best, bad) if prefer_high else (bad, best)
        lo_c = below + 1 if below is not None else low
        hi_c = above - 1 if above is not None else high
        if lo_c > hi_c:
            break
        code = next_guess(code, lo_c, hi_c)
    return best, bad


def compress_to_target(
    model,
    image: ImageData,
    *,
    target_bytes: int | None = None,
    target_psnr: float | None = None,
    metric: str = "mse",
    tile: int = DEFAULT_TILE,
    **options,
) -> TargetResult:
    """Encode ``image`` at the quality that meets one target (see the module docstring).

    ``target_bytes``: the file may not be larger (``--target-bpp`` converts to this);
    ``target_psnr``: PSNR-RGB of the decoded file, at least. ``options``: passed to
    :func:`mlic.codec.compress_image` (``verify``, ``refine``, ...).
    """
    if (target_bytes is None) == (target_psnr is None):
        raise ValueError("give exactly one of target_bytes and target_psnr")
    if not model.config.variable_rate:
        raise TargetError("a size or PSNR target needs variable-rate weights (these have one rate)")
    low, high = (q * QUALITY_SCALE for q in model.config.quality_range)
    estimate = _Estimate(model, image, tile)
    encodes = 0
    real: dict[int, tuple[bytes, float | None]] = {}

    def encode(code: int) -> tuple[bytes, float | None]:
        nonlocal encodes
        if code not in real:
            encodes += 1
            data = compress_image(model, image, quality=code / QUALITY_SCALE, metric=metric, tile=tile, **options)
            psnr = psnr_rgb(image.rgb, decompress_bytes(data, model).rgb) if target_psnr is not None else None
            real[code] = (data, psnr)
        return real[code]

    def result(code: int, note: str = "") -> TargetResult:
        data, psnr = real[code]
        return TargetResult(data, code / QUALITY_SCALE, psnr, encodes, note)

    if target_bytes is not None:
        if not target_bytes > 0:
            raise TargetError("the size target must be positive")
        goal = float(target_bytes)
        size = lambda c: len(encode(c)[0])  # noqa: E731

        def next_bytes(code: int, lo_c: int, hi_c: int) -> int:
            # correct the estimate by what the last real file cost, aim just under the target
            aim = goal * (1 - SIZE_TOLERANCE / 2) / (size(code) / max(estimate(code, False)[0], 1.0))
            guess = _bisect(low, high, lambda c: estimate(c, False)[0] <= aim)
            code = min(max(guess, lo_c), hi_c)
            if code in real or guess == code:  # the estimate repeats itself: bisect the bracket instead
                code = (lo_c + hi_c + 1) // 2
            return code

        # the estimate first: the largest quality whose estimated size is within the target
        first = _bisect(low, high, lambda c: estimate(c, False)[0] <= goal * (1 - SIZE_TOLERANCE / 2))
        fits, too_big = _real_search(first, lambda c: size(c) <= target_bytes,
                                     lambda c: size(c) >= (1 - SIZE_TOLERANCE) * target_bytes, next_bytes,
                                     low, high, prefer_high=True)  # fmt: skip
        if fits is None and (too_big == low or size(low) > target_bytes):
            raise TargetError(f"{target_bytes:,} bytes is below the smallest file these weights make "
                              f"({size(low):,} bytes at quality {low / QUALITY_SCALE:g})")  # fmt: skip
        fits = low if fits is None else fits
        note = ""
        if fits == high and size(high) < (1 - SIZE_TOLERANCE) * target_bytes:
            note = f"the target is above what the highest quality ({high / QUALITY_SCALE:g}) needs"
        return result(fits, note)

    if not math.isfinite(target_psnr):
        raise TargetError("the PSNR target must be a finite number")
    psnr = lambda c: encode(c)[1]  # noqa: E731

    def next_psnr(code: int, lo_c: int, hi_c: int) -> int:
        offset = psnr(code) - estimate(code, True)[1]  # correct the estimate by the last real file's PSNR
        guess = _first_meeting(low, high, lambda c: estimate(c, True)[1] + offset < target_psnr)
        code = min(max(guess, lo_c), hi_c)
        return (lo_c + hi_c) // 2 if code in real else code

    first = _first_meeting(low, high, lambda c: estimate(c, True)[1] < target_psnr)
    meets, fails = _real_search(first, lambda c: psnr(c) >= target_psnr,
                                lambda c: psnr(c) - target_psnr <= PSNR_TOLERANCE, next_psnr,
                                low, high, prefer_high=False)  # fmt: skip
    if meets is None:
        if fails == high or psnr(high) < target_psnr:
            raise TargetError(f"{target_psnr:g} dB is above what these weights reach "
                              f"({psnr(high):.2f} dB at quality {high / QUALITY_SCALE:g})")  # fmt: skip
        meets = high
    note = ""
    if meets == low and psnr(low) > target_psnr + PSNR_TOLERANCE:
        note = f"the lowest quality ({low / QUALITY_SCALE:g}) already exceeds the target"
    return result(meets, note)
