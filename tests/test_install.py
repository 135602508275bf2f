"""A regular (non-editable) install carries everything the package needs: the bundled weights,
the sample photo, and the demo runs from it, away from the source tree."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_install_runs_the_demo_outside_the_source_tree(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    r = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (wheel,) = (tmp_path / "dist").glob("mlic-*.whl")
    site = tmp_path / "site"
    r = subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="2")
    where = subprocess.run([sys.executable, "-c", "import mlic; print(mlic.__file__)"], cwd=run_dir, env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout  # the installed copy, not src/
    demo = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], cwd=run_dir, env=env, capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr
    assert "PSNR" in demo.stdout and (run_dir / "out" / "demo" / "astronaut.decoded.png").is_file()
    assert str(site) in demo.stdout  # the sample photo was read from the installed package
    cli = subprocess.run([str(Path(sys.executable).parent / "python"), "-m", "mlic.cli.main", "zoo"], cwd=run_dir, env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert cli.returncode == 0 and "mlic-plus" in cli.stdout, cli.stderr


def test_make_refuses_a_python_older_than_the_lock_in_one_line(tmp_path):
    """The lock's releases need Python 3.11+: `make install` with an older interpreter stops
    before creating anything, saying which interpreter and how to pick another (PYTHON=...),
    instead of pip's long resolver error; the interpreter of this run passes the same check."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    fake = tmp_path / "python3.10"  # this interpreter, reporting 3.10 to the code it runs
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "import sys; sys.version_info = (3, 10, 14, \'final\', 0); '
                    f'exec(sys.argv[1])" "$2"\n')  # fmt: skip
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    r = subprocess.run(["make", "-s", "-C", str(ROOT), "install", f"VENV={venv}", f"PYTHON={fake}"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode != 0 and not venv.exists()
    lines = [ln for ln in r.stderr.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", ln)]  # make's own
    assert lines == [f"make: requirements.lock needs Python 3.11 or newer; {fake} is 3.10: run make "
                     "PYTHON=python3.11 (or newer)"], r.stderr  # fmt: skip
    ok = subprocess.run(["make", "-s", "-n", "-C", str(ROOT), "install", f"VENV={venv}", f"PYTHON={sys.executable}"],
                        capture_output=True, text=True)  # fmt: skip
    check = next(ln for ln in ok.stdout.splitlines() if "sys.version_info" in ln)
    assert subprocess.run(["sh", "-c", check], capture_output=True).returncode == 0
