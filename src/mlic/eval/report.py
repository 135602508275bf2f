"""A self-contained HTML report: RD plots, a BD-rate table and side-by-side crops.

The page has no external resources: plots are inline SVG, crops are PNG data URIs,
the before/after slider is a few lines of inline JavaScript (a range input clipping
the upper image). Crops are made fresh: for each chosen image our codec is run at
one of its rate points (from the ``points`` recorded by ``mlic eval``), and every
classic codec of a ``mlic bench`` file at the setting whose bpp on that image is
closest to ours (from its per-image values), so crops compare at matched bpp.
"""

from __future__ import annotations

import base64
import html
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import MlicError
from .bd import bd_psnr, bd_rate
from .metrics import psnr_rgb
from .plot import is_ours, render
from .results import Results
from .runner import Coded, CodecFn, read_rgb

CROP = 256


class ReportError(MlicError):
    """The report cannot be built from these inputs."""


@dataclass
class Tile:
    label: str
    bpp: float
    psnr: float
    png: str  # data URI


def _data_uri(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", optimize=False, compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def crop_box(rgb: np.ndarray, size: int = CROP) -> tuple[int, int, int, int]:
    """The most detailed ``size`` square on a coarse grid (where codecs differ most)."""
    h, w = rgb.shape[:2]
    s = min(size, h, w)
    g = rgb[..., 1].astype(np.float32)
    energy = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1]
    best, box = -1.0, (0, 0, s, s)
    step = max(8, s // 4)
    for top in range(0, h - s + 1, step):
        for left in range(0, w - s + 1, step):
            e = float(energy[top : top + s - 1, left : left + s - 1].mean())
            if e > best:
                best, box = e, (top, left, s, s)
    return box


def _model_codec_for(results: Results, index: int) -> CodecFn:
    """Our codec at rate point ``index``, from the weights recorded by ``mlic eval``."""
    from .. import zoo
    from ..io.weights import WeightsError, load_model, model_digest
    from .runner import model_codec

    points = results.extra.get("points")
    if not isinstance(points, list) or len(points) != len(results.series["bpp"]):
        raise ReportError(f"{results.name}: no per-point weights recorded (write it with mlic eval)")
    point = points[index]
    source = str(point.get("weights", ""))
    if source.startswith("bundled:"):  # bundled:MODEL/METRIC/FILE (earlier: .../qN)
        model_name, metric, which = source[len("bundled:") :].split("/")
        by_file = [e for e in zoo.entries() if e.file == which]
        entry = by_file[0] if by_file else zoo.find(model_name, float(which.lstrip("q")), metric)
        model = zoo.load(entry)
    else:
        model = load_model(source)
    if point.get("sha256") and model_digest(model) != point["sha256"]:
        raise WeightsError(f"{source}: weights changed since the evaluation (SHA-256 differs)")
    return model_codec(model, quality=float(point.get("quality") or 0))


def _classic_codec_for(results: Results, image: str, target_bpp: float) -> tuple[CodecFn, float]:
    from .classic import get

    codec = get(str(results.extra["codec"]))
    values = results.values("quality")
    per = results.extra.get("per_image", {}).get(image, {}).get("bpp") or results.values("bpp")
    i = int(np.argmin([abs(math.log(b / target_bpp)) for b in per]))
    return codec.codec(values[i], results.extra.get("preset")), values[i]


def bd_table(results: list[Results], anchor: Results, method: str = "pchip") -> list[dict]:
    rows = []
    for r in results:
        if r is anchor:
            continue
        row = {"name": r.name}
        for key, metric in (("psnr", "psnr-rgb"), ("msssim", "ms-ssim-rgb")):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    row[f"rate_{key}"] = bd_rate(anchor.values("bpp"), anchor.values(metric), r.values("bpp"), r.values(metric), method)
                    if key == "psnr":
                        row["bd_psnr"] = bd_psnr(anchor.values("bpp"), anchor.values(metric), r.values("bpp"), r.values(metric), method)
            except (ValueError, MlicError):
                row[f"rate_{key}"] = None
        rows.append(row)
    return rows


def _fmt(v, unit: str) -> str:
    return "n/a" if v is None else f"{v:+.2f} {unit}"


def build_report(
    results: list[Results],
    images: list[Path],
    *,
    anchor: str | None = None,
    crops: int = 3,
    method: str = "pchip",
    title: str = "mlic RD report",
) -> str:
    """The HTML text of the report."""
    if not results:
        raise ReportError("no results to report")
    by_name = {r.name: r for r in results}
    if anchor is not None and anchor not in by_name:
        raise ReportError(f"no results named {anchor!r}; have {', '.join(by_name)}")
    anchor_r = by_name[anchor] if anchor else next((r for r in results if not is_ours(r)), results[0])
    ours = [r for r in results if is_ours(r)]
    benches = [r for r in results if r.extra.get("source") == "bench" and "codec" in r.extra]

    plot_svg = render(results, "svg").decode()
    plot_svg = plot_svg[plot_svg.find("<svg") :]  # drop the XML prologue for inline use
    rows = bd_table(results, anchor_r, method)

    parts = [f"<h1>{html.escape(title)}</h1>", f"<section id='rd'><h2>Rate-distortion</h2>{plot_svg}</section>"]
    table = [f"<section id='bd'><h2>BD-rate against {html.escape(anchor_r.name)} ({method})</h2>",
             "<table><tr><th>codec</th><th>BD-rate (PSNR-RGB)</th><th>BD-PSNR</th><th>BD-rate (MS-SSIM)</th></tr>"]  # fmt: skip
    for row in rows:
        table.append(f"<tr><td>{html.escape(row['name'])}</td><td>{_fmt(row['rate_psnr'], '%')}</td>"
                     f"<td>{_fmt(row.get('bd_psnr'), 'dB')}</td><td>{_fmt(row['rate_msssim'], '%')}</td></tr>")  # fmt: skip
    table.append("</table><p class='note'>Negative BD-rate: fewer bits than the anchor at equal quality.</p></section>")
    parts.append("".join(table))

    if ours and images and crops > 0:
        mine = ours[0]
        names = set(mine.extra.get("per_image", {}))
        chosen = [p for p in images if not names or p.name in names][:crops]
        parts.append(f"<section id='crops'><h2>Crops at matched bpp ({html.escape(mine.name)})</h2>")
        mid = len(mine.series["bpp"]) // 2
        ours_fn = _model_codec_for(mine, mid)
        for path in chosen:
            rgb = read_rgb(path)
            top, left, ch, cw = crop_box(rgb)
            coded: Coded = ours_fn(rgb)
            bpp = coded.bits / (rgb.shape[0] * rgb.shape[1])
            tiles = [Tile(f"{mine.name}", bpp, psnr_rgb(rgb, coded.decoded), _data_uri(coded.decoded[top : top + ch, left : left + cw]))]
            for b in benches:
                fn, value = _classic_codec_for(b, path.name, bpp)
                c = fn(rgb)
                tiles.append(Tile(f"{b.name} ({b.extra.get('parameter', 'q')} {value:g})", c.bits / (rgb.shape[0] * rgb.shape[1]),
                                  psnr_rgb(rgb, c.decoded), _data_uri(c.decoded[top : top + ch, left : left + cw])))  # fmt: skip
            original = _data_uri(rgb[top : top + ch, left : left + cw])
            parts.append(_crop_block(path.name, (top, left, ch, cw), original, tiles))
        parts.append("</section>")
    return _page(title, "\n".join(parts))


def _crop_block(name: str, box, original: str, tiles: list[Tile]) -> str:
    top, left, h, w = box
    cells = [f"<figure><img src='{original}' width='{w}' height='{h}' alt='original'><figcaption>original</figcaption></figure>"]
    for t in tiles:
        cells.append(f"<figure><img src='{t.png}' width='{w}' height='{h}' alt='{html.escape(t.label)}'>"
                     f"<figcaption>{html.escape(t.label)}<br>{t.bpp:.3f} bpp, {t.psnr:.2f} dB</figcaption></figure>")  # fmt: skip
    slider = (f"<div class='slider' style='width:{w * 2}px;height:{h * 2}px'>"
              f"<img src='{original}' alt='original'><div class='top'><img src='{tiles[0].png}' alt='ours'></div>"
              f"<input type='range' min='0' max='100' value='50' aria-label='before/after'></div>"
              f"<p class='note'>Slider: left {html.escape(tiles[0].label)}, right original (2x zoom).</p>")  # fmt: skip
    return (f"<div class='image'><h3>{html.escape(name)} <span class='note'>crop {w}x{h} at ({left}, {top})</span></h3>"
            f"<div class='row'>{''.join(cells)}</div>{slider}</div>")  # fmt: skip


STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1500px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}.note{color:#666;font-size:90%}
.row{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0}figcaption{font-size:85%;text-align:center}
img{image-rendering:pixelated}svg{max-width:100%;height:auto}
.slider{position:relative;margin:12px 0 48px}.slider img{position:absolute;top:0;left:0;width:100%;height:100%}
.slider .top{position:absolute;top:0;left:0;width:100%;height:100%;clip-path:inset(0 50% 0 0)}
.slider input{position:absolute;bottom:-28px;left:0;width:100%}
"""

SCRIPT = """
document.querySelectorAll('.slider').forEach(function (s) {
  var top = s.querySelector('.top'), input = s.querySelector('input');
  function update() { top.style.clipPath = 'inset(0 ' + (100 - input.value) + '% 0 0)'; }
  input.addEventListener('input', update); update();
});
document.body.setAttribute('data-ready', '1');
"""


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}<script>{SCRIPT}</script></body></html>\n")  # fmt: skip
