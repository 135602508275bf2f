"""RD plots: PSNR-RGB and MS-SSIM (dB) against bpp, one line per results file.

Our own results (``bpp_kind`` present: written by ``mlic eval``) are drawn as solid
lines with filled markers; everything else (classic codecs measured by ``mlic bench``,
published anchors) dashed with open markers, so models and anchors stay apart even in
grey print. Needs matplotlib (``pip install 'mlic[plot]'``).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from ..errors import MlicError
from .results import Results

MARKERS = "osD^vP*Xh<>p"


class PlotError(MlicError):
    """A plot cannot be drawn (matplotlib missing, or nothing to plot)."""


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text in SVG (searchable, small)
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("plotting needs matplotlib: pip install 'mlic[plot]'") from None
    return plt


def is_ours(r: Results) -> bool:
    return r.extra.get("source") == "mlic"


def _msssim_db(r: Results) -> list[float] | None:
    if "ms-ssim-rgb-db" in r.series and all(v is not None for v in r.series["ms-ssim-rgb-db"]):
        return [float(v) for v in r.series["ms-ssim-rgb-db"]]
    if "ms-ssim-rgb" in r.series and all(v is not None for v in r.series["ms-ssim-rgb"]):
        return [-10 * math.log10(max(1e-10, 1 - float(v))) for v in r.series["ms-ssim-rgb"]]
    return None


def figure(results: list[Results], title: str = "", max_bpp: float | None = None):
    """A matplotlib figure with the PSNR panel and, when any file has MS-SSIM, the MS-SSIM panel."""
    plt = _pyplot()
    if not results:
        raise PlotError("nothing to plot")
    panels = [("psnr-rgb", "PSNR-RGB (dB)")]
    if any(_msssim_db(r) for r in results):
        panels.append(("ms-ssim-rgb-db", "MS-SSIM-RGB (dB)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.8), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        for i, r in enumerate(sorted(results, key=lambda r: not is_ours(r))):
            bpp = [float(v) for v in r.series["bpp"]]
            ys = _msssim_db(r) if key == "ms-ssim-rgb-db" else r.series.get("psnr-rgb")
            if not ys or any(v is None for v in ys):
                continue
            pts = sorted(zip(bpp, ys))
            if max_bpp:
                pts = [p for p in pts if p[0] <= max_bpp] or pts[:1]
            ours = is_ours(r)
            ax.plot(*zip(*pts), linestyle="-" if ours else "--", linewidth=2.2 if ours else 1.2,
                    marker=MARKERS[i % len(MARKERS)], markersize=5, markerfacecolor=None if ours else "none",
                    label=r.name + ("" if ours else " (anchor)"))  # fmt: skip
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def render(results: list[Results], fmt: str = "svg", **kw) -> bytes:
    """The figure as SVG or PNG bytes."""
    plt = _pyplot()
    fig = figure(results, **kw)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110)
    plt.close(fig)
    return buf.getvalue()


def save_plot(results: list[Results], path: str | Path, force: bool = False, **kw) -> Path:
    from ..io.files import atomic_write

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise PlotError(f"{path}: choose a .png, .svg or .pdf output")
    data = render(results, fmt, **kw)
    return atomic_write(path, lambda f: f.write(data), force=force)
