"""RD results files: CompressAI's schema, read and written; the MLIC papers' files, read.

The written schema (``mlic eval`` and ``mlic bench``) is CompressAI's, so its tools and
the published anchors read it, plus fields of our own::

    {
      "name": "mlic-plus", "description": "...",
      "bpp_kind": "bitstream" | "estimate",
      "results": {"quality": [...], "bpp": [...], "psnr-rgb": [...], "ms-ssim-rgb": [...],
                  "ms-ssim-rgb-db": [...], "encoding_time": [...], "decoding_time": [...]},
      "per_image": {"kodim01.png": {"bpp": [...], "psnr-rgb": [...], ...}, ...},
      "environment": {...}
    }

Every list in ``results`` has one value per rate point, the mean over the images; bpp
counts the whole file. Metrics that cannot be computed (MS-SSIM needs sides of at least
161 pixels) are ``null``. The MLIC repository's ``{"bpp": [...], "psnr": [...]}`` files are
read as ``bpp`` and ``psnr-rgb``.
"""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MlicError
from ..io.files import check_input_file


class ResultsError(MlicError):
    """A results file cannot be read or used."""


@dataclass
class Results:
    """One codec's RD curve: ``series`` maps a metric name to one value per rate point."""

    name: str
    series: dict[str, list]
    description: str = ""
    extra: dict = field(default_factory=dict)

    def values(self, key: str) -> list[float]:
        if key not in self.series:
            raise ResultsError(f"{self.name}: no '{key}' values (it has {', '.join(sorted(self.series))})")
        vals = self.series[key]
        if any(v is None for v in vals):
            raise ResultsError(f"{self.name}: '{key}' is missing for some rate points")
        return [float(v) for v in vals]

    def to_json(self) -> dict:
        out = {"name": self.name, "description": self.description}
        out.update({k: v for k, v in self.extra.items() if k not in ("name", "description", "results")})
        out["results"] = self.series
        return out


def _check_series(name: str, series: dict) -> dict[str, list]:
    if not isinstance(series, dict) or "bpp" not in series:
        raise ResultsError(f"{name}: no 'bpp' list")
    clean: dict[str, list] = {}
    n = None
    for key, vals in series.items():
        if not isinstance(vals, list):
            continue  # scalars (e.g. CompressAI's averaged timings in some files) are not curves
        if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)) for v in vals):
            raise ResultsError(f"{name}: '{key}' must be a list of finite numbers")
        if n is None:
            n = len(vals)
        if len(vals) != n:
            raise ResultsError(f"{name}: '{key}' has {len(vals)} values, other lists have {n}")
        clean[key] = vals
    if not clean.get("bpp"):
        raise ResultsError(f"{name}: empty 'bpp' list")
    if any(v is None or v <= 0 for v in clean["bpp"]):
        raise ResultsError(f"{name}: bpp values must be positive")
    return clean


def parse_results(raw, fallback_name: str) -> Results:
    if not isinstance(raw, dict):
        raise ResultsError(f"{fallback_name}: not an RD results object")
    if "results" in raw:  # CompressAI schema (and ours)
        name = str(raw.get("name") or fallback_name)
        extra = {k: v for k, v in raw.items() if k not in ("name", "description", "results")}
        return Results(name, _check_series(name, raw["results"]), str(raw.get("description", "")), extra)
    if "bpp" in raw and "psnr" in raw:  # the MLIC papers' files
        series = {"bpp": raw["bpp"], "psnr-rgb": raw["psnr"]}
        if "ms-ssim" in raw:
            series["ms-ssim-rgb"] = raw["ms-ssim"]
        return Results(fallback_name, _check_series(fallback_name, series), "published points")
    raise ResultsError(f"{fallback_name}: neither CompressAI's schema ('results') nor 'bpp'/'psnr' lists")


def load_results(path: str | Path) -> Results:
    path = Path(path)
    check_input_file(path, ResultsError)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not a JSON results file ({exc.__class__.__name__})") from None
    return parse_results(raw, path.stem)


def save_results(results: Results, path: str | Path, force: bool = True) -> Path:
    from ..io.files import atomic_write

    text = json.dumps(results.to_json(), indent=2, allow_nan=False) + "\n"
    return atomic_write(Path(path), lambda f: f.write(text.encode()), force=force)


def merge_results(parts: list[Results], name: str | None = None) -> Results:
    """One curve from curves of the same codec measured on the same images in pieces
    (for example one process per quality), rate points ordered by bpp.

    The parts must have the same metrics and, where recorded, the same image names;
    ``points`` (what each rate point was) and ``per_image`` lists are merged in step.
    """
    if not parts:
        raise ResultsError("nothing to merge")
    keys = set(parts[0].series)
    images = parts[0].extra.get("per_image")
    for r in parts[1:]:
        if set(r.series) != keys:
            raise ResultsError(f"{r.name}: its metrics differ from {parts[0].name}'s")
        if (r.extra.get("per_image") is None) != (images is None) or (
            images is not None and set(r.extra["per_image"]) != set(images)
        ):
            raise ResultsError(f"{r.name}: measured on other images than {parts[0].name}")
    # (part, index) of every rate point, by bpp
    order = sorted(((p, i) for p, r in enumerate(parts) for i in range(len(r.series["bpp"]))),
                   key=lambda pi: parts[pi[0]].series["bpp"][pi[1]])  # fmt: skip
    series = {k: [parts[p].series[k][i] for p, i in order] for k in parts[0].series}
    extra = dict(parts[0].extra)
    if images is not None:
        extra["per_image"] = {
            img: {k: [parts[p].extra["per_image"][img][k][i] for p, i in order] for k in images[img]} for img in images
        }
    if all(isinstance(r.extra.get("points"), list) for r in parts):
        extra["points"] = [parts[p].extra["points"][i] for p, i in order]
    return Results(name or parts[0].name, series, parts[0].description, extra)


def environment(threads: int | None = None, device: str = "cpu") -> dict:
    """Versions and machine facts recorded with every results file."""
    import numpy
    import torch

    from .. import __version__

    try:
        import constriction

        constriction_version = getattr(constriction, "__version__", "unknown")
    except ImportError:  # pragma: no cover - a core dependency
        constriction_version = None
    return {
        "mlic": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "constriction": constriction_version,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "device": device,
    }


def mean_or_none(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(sum(vals) / len(vals)) if vals and len(vals) == len(values) else None
