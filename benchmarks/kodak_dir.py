"""The Kodak folder of the benchmarks: ``--kodak DIR`` (default ``$MLIC_KODAK``); nothing in
the repository points at a folder outside the clone."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_kodak_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--kodak", default=os.environ.get("MLIC_KODAK"), help="folder of the Kodak images (default: $MLIC_KODAK)")


def kodak_images(folder: str | None, count: int) -> list[Path]:
    """The first ``count`` Kodak PNGs of ``folder``, sorted; exits with a one-line message if none."""
    if not folder:
        raise SystemExit("give --kodak DIR (the Kodak PNGs) or set MLIC_KODAK")
    images = sorted(Path(folder).glob("kodim*.png"))[:count]
    if not images:
        raise SystemExit(f"no Kodak images (kodim*.png) in {folder}")
    return images
