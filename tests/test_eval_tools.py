"""The evaluation toolkit: eval, bench, bd-rate, plot and report, on small inputs."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ANCHORS, TINY, data_file, kodak_rgb
from mlic.cli.main import main
from mlic.eval.bd import METHODS, bd_psnr, bd_rate
from mlic.eval.classic import CODECS, rgb_to_ycbcr, ycbcr_to_rgb
from mlic.eval.results import Results, ResultsError, load_results, merge_results
from mlic.io import save_model
from mlic.models import build


def run(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Three small Kodak crops in a folder, one of them 170x180 for MS-SSIM."""
    d = tmp_path_factory.mktemp("imgs")
    for i, (name, h, w) in enumerate([("kodim05.png", 170, 180), ("kodim15.png", 64, 96), ("kodim23.png", 48, 72)]):
        Image.fromarray(kodak_rgb(name, h, w)).save(d / f"img{i}.png")
    return d


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> list[Path]:
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = tmp_path_factory.mktemp("w") / f"tiny{seed}.safetensors"
        save_model(build("mlic-plus", **TINY), path)
        out.append(path)
    return out


def _anchor_curves() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    curves = {}
    data_file("anchors", "kodak")
    for p in sorted(ANCHORS.glob("*.json")):
        r = load_results(p)
        curves[r.name] = (np.array(r.values("bpp")), np.array(r.values("psnr-rgb")))
    return curves


def test_bd_rate_agrees_with_the_bjontegaard_package_on_published_anchors():
    import bjontegaard

    curves = _anchor_curves()
    assert len(curves) >= 10
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a, t in itertools.permutations(curves, 2):
            for method in METHODS:
                theirs = bjontegaard.bd_rate(*curves[a], *curves[t], method=method, require_matching_points=False, min_overlap=0)
                theirs_psnr = bjontegaard.bd_psnr(*curves[a], *curves[t], method=method, require_matching_points=False, min_overlap=0)
                try:
                    ours = bd_rate(*curves[a], *curves[t], method)
                    ours_psnr = bd_psnr(*curves[a], *curves[t], method)
                except ValueError:  # no overlap: theirs is NaN
                    assert np.isnan(theirs)
                    continue
                assert ours == pytest.approx(theirs, abs=1e-6), (a, t, method)
                assert ours_psnr == pytest.approx(theirs_psnr, abs=1e-6), (a, t, method)
                compared += 1
    assert compared > 300
    # sanity: a codec against itself, and the methods differ on real data
    jpeg, vtm = curves["JPEG"] if "JPEG" in curves else curves["jpeg"], curves["VTM"] if "VTM" in curves else curves["vtm"]
    rates = {m: bd_rate(*jpeg, *vtm, m) for m in METHODS}
    assert all(-80 < v < -40 for v in rates.values()) and len(set(rates.values())) == 3


def test_bd_rate_cli(tmp_path, capsys):
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    c = tmp_path / "c.json"
    a.write_text(json.dumps({"name": "A", "results": {"bpp": [0.1, 0.2, 0.4, 0.8], "psnr-rgb": [28, 31, 34, 37]}}))
    b.write_text(json.dumps({"bpp": [0.09, 0.18, 0.36, 0.72], "psnr": [28, 31, 34, 37]}))  # MLIC papers' schema
    c.write_text(json.dumps({"name": "C", "results": {"bpp": [0.1, 0.2, 0.4], "psnr-rgb": [40, 41, 42]}}))
    assert run("bd-rate", a, b) == 0
    out = capsys.readouterr()
    assert "b: BD-rate -10.00 %" in out.out and "warning" not in out.err
    assert run("bd-rate", a, c) == 2  # no overlap, and only 3 points: warned, nothing computed
    err = capsys.readouterr().err
    assert "do not overlap" in err
    d = tmp_path / "d.json"
    d.write_text(json.dumps({"name": "D", "results": {"bpp": [0.1, 0.2, 0.4], "psnr-rgb": [29, 32, 35]}}))
    assert run("bd-rate", a, d, "--method", "akima") == 0
    assert "fewer than 4 points" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    for text in ("{", "[1, 2]", '{"results": {"bpp": [1, 2], "psnr-rgb": [1]}}', '{"results": {"bpp": [0, 2]}}'):
        bad.write_text(text)
        assert run("bd-rate", a, bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("mlic: error: ")


def test_eval_real_bitstreams_and_estimate(tmp_path, images, tiny_weights, capsys):
    out = tmp_path / "ours.json"
    assert run("eval", images, "--weights", *tiny_weights, "-o", out, "--quiet", "--name", "tiny") == 0
    res = json.loads(out.read_text())
    assert res["name"] == "tiny" and res["bpp_kind"] == "bitstream" and res["results"]["quality"] == [1, 2]
    for key in ("bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-rgb-db", "encoding_time", "decoding_time"):
        assert len(res["results"][key]) == 2
    assert res["environment"]["torch"] == torch.__version__
    per = res["per_image"]
    assert sorted(per) == ["img0.png", "img1.png", "img2.png"]
    assert per["img1.png"]["ms-ssim-rgb"] == [None, None]  # 64x96 is too small for 5-scale MS-SSIM
    assert res["results"]["ms-ssim-rgb"] == [None, None]  # a mean over some images would mislead
    assert 0 < per["img0.png"]["ms-ssim-rgb"][0] <= 1
    # whole-file bpp: the same bytes `mlic compress` writes
    dst = tmp_path / "img1.mlic"
    assert run("compress", images / "img1.png", "--weights", tiny_weights[0], "-o", dst) == 0
    assert per["img1.png"]["bpp"][0] == pytest.approx(8 * dst.stat().st_size / (64 * 96))
    assert np.mean([per[k]["bpp"][1] for k in per]) == pytest.approx(res["results"]["bpp"][1])
    # the entropy estimate is close to (and below) the real files, which carry headers
    est = tmp_path / "est.json"
    assert run("eval", images, "--weights", tiny_weights[0], "-o", est, "--estimate", "--quiet") == 0
    e = json.loads(est.read_text())
    assert e["bpp_kind"] == "estimate"
    real_bits = 8 * dst.stat().st_size
    est_bits = e["per_image"]["img1.png"]["bpp"][0] * 64 * 96
    assert est_bits < real_bits < est_bits * 1.05 + 8 * 120
    assert e["per_image"]["img1.png"]["psnr-rgb"][0] == pytest.approx(per["img1.png"]["psnr-rgb"][0], abs=0.05)
    capsys.readouterr()
    assert run("eval", images, "--weights", tiny_weights[0], "-o", est, "--quiet") == 2  # exists
    assert "exists" in capsys.readouterr().err
    assert run("eval", tmp_path / "nothing", "--weights", tiny_weights[0]) == 2


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_bench_every_classic_codec(tmp_path, images, codec):
    c = CODECS[codec]
    values = [c.sweep[1], c.sweep[-2]]
    extra = ["--preset", "faster"] if codec == "vvenc" else ["--preset", "ultrafast"] if codec == "x265" else []
    out = tmp_path / f"{codec}.json"
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(images / "img1.png", one / "img1.png")  # 64x96: odd multiples of 8 for the video codecs
    shutil.copy(images / "img2.png", one / "img2.png")  # 48x72
    assert run("bench", codec, one, "--values", *values, "-o", out, "--quiet", *extra) == 0
    r = json.loads(out.read_text())
    bpp, psnr = r["results"]["bpp"], r["results"]["psnr-rgb"]
    assert r["codec"] == codec and r["results"]["quality"] == values
    assert bpp[0] < bpp[1] and psnr[0] < psnr[1], (bpp, psnr)  # the sweep goes from low to high quality
    # a decoded image, not noise: on these committed Kodak crops the lowest points average 21.6
    # (JPEG 2000 at ratio 200: its floor of ~270 bytes of headers) to 39.0 dB (JPEG XL) with the
    # lock's Pillow 13.0.0 and imagecodecs; synthetic noise images took JPEG 2000 down to 13 dB
    assert 15 < psnr[0] < 60 and 0.02 < bpp[0] < 12


def test_ycbcr_round_trip_is_near_lossless():
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    back = ycbcr_to_rgb(rgb_to_ycbcr(rgb))
    assert np.abs(back.astype(int) - rgb).max() == 0


def test_missing_codec_gives_install_hint(monkeypatch, images, capsys):
    import mlic.eval.classic as classic

    monkeypatch.setattr(classic, "ffmpeg_exe", lambda: None)
    assert run("bench", "x265", images) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mlic: error: libx265: no ffmpeg found") and "mlic[bench]" in err


def _curves(tmp_path, images, tiny_weights) -> list[Path]:
    ours = tmp_path / "ours.json"
    assert run("eval", images, "--weights", *tiny_weights, "-o", ours, "--quiet") == 0
    webp = tmp_path / "webp.json"
    assert run("bench", "webp", images, "--values", 5, 20, 50, 80, "-o", webp, "--quiet") == 0
    jpeg = tmp_path / "jpeg.json"
    assert run("bench", "jpeg", images, "--values", 5, 20, 50, 80, "-o", jpeg, "--quiet") == 0
    return [ours, webp, jpeg]


def test_plot_png_and_svg(tmp_path, images, tiny_weights, capsys):
    files = _curves(tmp_path, images, tiny_weights)
    png, svg = tmp_path / "rd.png", tmp_path / "rd.svg"
    assert run("plot", *files, data_file("anchors", "kodak", "vtm.json"), "-o", png) == 0
    assert run("plot", *files, "-o", svg, "--title", "small test") == 0
    with Image.open(png) as im:
        px = np.asarray(im.convert("RGB")).reshape(-1, 3)
        # two panels side by side (PSNR and MS-SSIM: the VTM anchor has MS-SSIM points) at the
        # figure size of mlic.eval.plot; one panel alone is about 700 px wide
        assert im.size[0] > 1000 and len(np.unique(px, axis=0)) > 50
    text = svg.read_text()
    assert text.count("<svg") == 1 and "mlic-plus" in text and "webp (anchor)" in text and "small test" in text
    capsys.readouterr()
    assert run("plot", *files, "-o", tmp_path / "rd.gif") == 2
    assert run("plot", *files, "-o", png) == 2  # exists
    assert "exists" in capsys.readouterr().err


def _chromium() -> str | None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None and os.environ.get("MLIC_REQUIRE_CHROMIUM"):
        pytest.fail("chromium is required here (MLIC_REQUIRE_CHROMIUM) but not installed")
    return exe


def _headless(exe: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu",
           "--enable-logging=stderr", "--v=0", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_report_loads_in_headless_chromium_and_shows_plot_and_crops(tmp_path, images, tiny_weights):
    files = _curves(tmp_path, images, tiny_weights)
    out = tmp_path / "report"
    assert run("report", *files, "--images", images, "-o", out, "--anchor", "jpeg", "--crops", 2) == 0
    page = out / "index.html"
    html = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html)  # self-contained: nothing fetched
    assert "<link" not in html and "@import" not in html
    assert html.count("<svg") == 1 and "BD-rate against jpeg" in html
    assert html.count("data:image/png;base64,") >= 2 * (1 + 3)  # 2 images x (original + ours + 2 codecs)
    assert run("report", *files, "-o", out) == 2  # exists without --force
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not installed (set MLIC_REQUIRE_CHROMIUM=1 to make this a failure)")
    dom = _headless(exe, "--dump-dom", page.as_uri())
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert dom.returncode == 0 and not console, console
    assert 'data-ready="1"' in dom.stdout  # the page's script ran to the end
    shot = tmp_path / "shot.png"
    _headless(exe, "--hide-scrollbars", "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri())
    with Image.open(shot) as im:
        px = np.asarray(im.convert("RGB"))
    top, bottom = px[: px.shape[0] // 3], px[px.shape[0] // 3 :]
    assert (top < 200).any(axis=2).mean() > 0.01  # plot lines and text
    colours = len(np.unique(bottom.reshape(-1, 3), axis=0))
    assert colours > 2000  # photographic crops, not just text and lines


def test_merge_results_orders_points_by_rate_and_keeps_per_image_values_in_step():
    def part(qs, bpps):
        per = {f"im{i}.png": {"bpp": [b + i for b in bpps], "psnr-rgb": [30.0 + q for q in qs]} for i in range(2)}
        series = {"quality": qs, "bpp": bpps, "psnr-rgb": [30.0 + q for q in qs]}
        return Results("m", series, "d", {"per_image": per, "points": [{"quality": q} for q in qs]})

    merged = merge_results([part([5, 2], [0.9, 0.2]), part([3], [0.4])], name="all")
    assert merged.name == "all"
    assert merged.series["quality"] == [2, 3, 5] and merged.series["bpp"] == [0.2, 0.4, 0.9]
    assert [p["quality"] for p in merged.extra["points"]] == [2, 3, 5]
    assert merged.extra["per_image"]["im1.png"]["bpp"] == [1.2, 1.4, 1.9]
    assert merged.extra["per_image"]["im0.png"]["psnr-rgb"] == [32.0, 33.0, 35.0]
    other = part([4], [0.5])
    other.extra["per_image"] = {"x.png": other.extra["per_image"]["im0.png"]}
    with pytest.raises(ResultsError, match="other images"):
        merge_results([part([2], [0.2]), other])
    with pytest.raises(ResultsError, match="metrics"):
        merge_results([part([2], [0.2]), Results("n", {"bpp": [0.3]})])
