"""Many photos and long photos: ``--jobs N`` worker processes, and the progress bar of one photo."""

from __future__ import annotations

import io
import re
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import kodak_rgb
from mlic.cli import common
from mlic.cli.main import main


def _mlic(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "mlic.cli.main", *map(str, args)], capture_output=True, text=True, env=env)


@pytest.fixture
def photos(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for k, name in enumerate(["kodim01.png", "kodim05.png", "kodim13.png", "kodim23.png"]):
        Image.fromarray(kodak_rgb(name, 40 + 9 * k, 72 - 5 * k)).save(src / name)
    return sorted(src.glob("*.png"))


def test_jobs_write_the_same_files_as_one_process_and_report_in_input_order(tmp_path, weights, photos):
    bad = photos[0].parent / "broken.png"
    bad.write_bytes(b"not an image")
    inputs = [*photos[:2], bad, *photos[2:]]
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    r1 = _mlic("compress", *inputs, "-o", one, "--weights", weights, "--threads", "1")
    r2 = _mlic("compress", *inputs, "-o", two, "--weights", weights, "--jobs", "2")
    for r in (r1, r2):  # the broken file is reported and skipped; the others are written
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("mlic: error:") == 1 and "broken.png" in r.stderr
    order = [line.split(" -> ")[0] for line in r2.stdout.splitlines()]
    assert order == [str(p) for p in photos]  # input order, whatever finished first
    for p in photos:
        assert (one / f"{p.stem}.mlic").read_bytes() == (two / f"{p.stem}.mlic").read_bytes()
    files = sorted(two.glob("*.mlic"))
    r = _mlic("decompress", *files, "-o", two, "--weights", weights, "--jobs", "3")
    assert r.returncode == 0, r.stderr
    r = _mlic("decompress", *files, "-o", one, "--weights", weights)
    assert r.returncode == 0, r.stderr
    for p in photos:
        assert np.array_equal(np.asarray(Image.open(one / f"{p.stem}.png")), np.asarray(Image.open(two / f"{p.stem}.png")))


def test_jobs_usage_errors_come_before_any_worker(tmp_path, weights, photos):
    r = _mlic("compress", *photos, "-o", tmp_path, "--weights", weights, "--jobs", "0")
    assert r.returncode == 1 and "--jobs" in r.stderr
    r = _mlic("compress", *photos, "-o", tmp_path, "--weights", weights, "--jobs", "2", "--metadata", "gps")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert not list(tmp_path.glob("*.mlic"))


def test_eval_with_jobs_gives_the_curve_of_one_process(tmp_path, weights, photos):
    outs = []
    for jobs in ("1", "3"):
        out = tmp_path / f"jobs{jobs}.json"
        r = _mlic("eval", *photos, "--weights", weights, weights, "-o", out, "--jobs", jobs, "--threads", "1")
        assert r.returncode == 0, r.stderr
        outs.append(json.loads(out.read_text()))
    a, b = outs
    for key in ("bpp", "psnr-rgb", "ms-ssim-rgb"):
        assert a["results"][key] == b["results"][key]
        assert [a["per_image"][p.name][key] for p in photos] == [b["per_image"][p.name][key] for p in photos]
    assert b["jobs"] == 3 and "jobs" not in a


def test_the_codec_reports_each_transform_and_slice_of_each_tile(weights):
    from mlic.codec import compress_image, decompress_bytes, progress_units
    from mlic.io.image import ImageData
    from mlic.io.weights import load_model

    model = load_model(weights)
    image = ImageData(kodak_rgb("kodim05.png", 100, 130))  # 2 x 3 tiles of 64
    calls: list[tuple[int, int]] = []
    data = compress_image(model, image, tile=64, progress=lambda done, total: calls.append((done, total)))
    total = progress_units(model, 6)
    assert total == 6 * (model.slices + 1)
    assert calls == [(k, total) for k in range(1, total + 1)]
    calls.clear()
    from mlic.codec import decompress_file
    from mlic.io.container import unpack

    out = decompress_file(unpack(data), model, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, total) for k in range(1, total + 1)]
    assert np.array_equal(out.rgb, decompress_bytes(data, model).rgb)  # reporting changes nothing


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal, quiet", [(True, False), (True, True), (False, False)])
def test_one_photo_shows_a_bar_on_a_terminal_only(tmp_path, weights, monkeypatch, capsys, terminal, quiet):
    src = tmp_path / "photo.png"
    Image.fromarray(kodak_rgb("kodim05.png", 100, 130)).save(src)
    err = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(common, "PROGRESS_DELAY_S", 0.0)  # a slow photo, as far as the bar knows
    monkeypatch.setattr(common, "PROGRESS_INTERVAL_S", 0.0)  # every step redraws: a fast CPU's 0.1 s would show 0/None only
    extra = ["--quiet"] if quiet else []
    assert main(["compress", str(src), "--weights", str(weights), "--tile", "64", *extra]) == 0
    assert main(["decompress", str(src.with_suffix(".mlic")), "-o", str(tmp_path / "out.png"),
                 "--weights", str(weights), *extra]) == 0  # fmt: skip
    shown = err.getvalue()
    if terminal and not quiet:
        assert "photo.png:" in shown and "photo.mlic:" in shown and "/30" in shown  # 6 tiles x (4 slices + 1)
    else:
        assert shown == ""
    assert "photo.mlic" in capsys.readouterr().out  # the summary lines stay on stdout


def test_the_bar_restarts_numbered_for_each_trial_encode_of_a_target(tmp_path, monkeypatch, capsys):
    from test_variable_rate import vr_model

    from mlic.io import save_model

    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(common, "PROGRESS_DELAY_S", 0.0)
    with common.WorkBar("x.png", True) as work:  # two passes over the same work
        for done in (1, 2, 3, 1, 2, 3):
            work.callback()(done, 3)
    assert "x.png (encode 2)" in err.getvalue() and "(encode 3)" not in err.getvalue()
    weights = tmp_path / "vr.safetensors"
    save_model(vr_model(), weights)
    src = tmp_path / "photo.png"
    Image.fromarray(kodak_rgb("kodim05.png", 100, 130)).save(src)
    err.seek(0)
    err.truncate()
    assert main(["compress", str(src), "--weights", str(weights), "--tile", "64", "--target-bytes", "3500"]) == 0
    encodes = int(re.search(r"\((\d+) encodes?", capsys.readouterr().out).group(1))
    assert "photo.png:" in err.getvalue()
    assert (f"(encode {encodes})" in err.getvalue()) == (encodes > 1) and f"(encode {encodes + 1})" not in err.getvalue()


def test_a_fast_photo_shows_no_bar(tmp_path, weights, monkeypatch):
    src = tmp_path / "photo.png"
    Image.fromarray(kodak_rgb("kodim05.png", 48, 64)).save(src)
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(common, "PROGRESS_DELAY_S", 3600.0)
    assert main(["compress", str(src), "--weights", str(weights)]) == 0
    assert err.getvalue() == ""


@pytest.mark.parametrize("with_progress", [False, True])
def test_a_latent_of_the_wrong_shape_is_refused_with_or_without_progress(weights, with_progress):
    import torch

    from mlic.io.weights import load_model

    model = load_model(weights)
    model.update()
    x = torch.rand(1, 3, 64, 128)
    y = torch.zeros(1, model.M, 4, 4)  # an image of 64x128 has a 4x8 latent
    ticks: list[int] = []
    with pytest.raises(ValueError, match="does not belong"):
        model.compress(x, y=y, progress=(lambda: ticks.append(1)) if with_progress else None)
    assert ticks == []
    model.compress(x, y=torch.zeros(1, model.M, 4, 8), progress=lambda: ticks.append(1))
    assert len(ticks) == model.slices + 1
