"""Bundled weights: they load offline, their hashes match, and they code a real photo sensibly."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from mlic import zoo
from mlic.cli.main import main
from mlic.codec import compress_image, decompress_bytes
from mlic.eval import psnr_rgb
from mlic.io.image import ImageData, read_image
from mlic.io.weights import WeightsError, load_model, model_digest

ENTRIES = zoo.entries()
SAMPLE = Path(str(resources.files("mlic") / "samples" / "astronaut.png"))


def test_manifest_lists_files_that_exist_and_are_small():
    assert ENTRIES, "no bundled weights"
    for e in ENTRIES:
        assert e.path.is_file(), e.file
        assert e.path.stat().st_size < 25 * 1024 * 1024
        assert len(e.sha256) == 64


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e.model}-q{e.quality}")
def test_bundled_weights_load_verify_and_round_trip(entry):
    model = zoo.load(entry)
    assert model_digest(model) == entry.sha256
    crop = read_image(SAMPLE).rgb[128:256, 160:288]
    data = compress_image(model, ImageData(np.ascontiguousarray(crop)), quality=entry.quality, metric=entry.metric)
    out = decompress_bytes(data, model)
    bpp = 8 * len(data) / (128 * 128)
    psnr = psnr_rgb(crop, out.rgb)
    # the band of each shipped quality on this crop (measured when bundled; update with the weights)
    expected_bpp, expected_psnr = CROP_BANDS[entry.quality]
    assert abs(bpp / expected_bpp - 1) < 0.2, bpp
    assert abs(psnr - expected_psnr) < 0.75, psnr


# (bpp, PSNR-RGB dB) of the 128x128 astronaut crop for the weights bundled on 2026-11-29 (session 6, step 9)
CROP_BANDS = {2: (0.335, 28.92), 3: (0.399, 29.75), 4: (0.479, 30.38), 5: (0.634, 30.81), 6: (0.712, 31.06)}


def test_bundled_ladder_rates_rise_with_quality():
    crop = read_image(SAMPLE).rgb[128:256, 160:288]
    sizes = []
    for e in sorted((e for e in ENTRIES if e.metric == "mse"), key=lambda e: e.quality):
        sizes.append(len(compress_image(zoo.load(e), ImageData(np.ascontiguousarray(crop)), quality=e.quality)))
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), sizes


def test_corrupted_weights_are_refused(tmp_path):
    e = ENTRIES[0]
    bad = tmp_path / "bad.safetensors"
    raw = bytearray(e.path.read_bytes())
    raw[-1000] ^= 0xFF  # inside the tensor data
    bad.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="corrupted"):
        load_model(bad)


def test_default_model_needs_no_weights_option(tmp_path):
    src = tmp_path / "photo.jpg"
    from PIL import Image

    Image.open(SAMPLE).crop((100, 100, 260, 220)).save(src, quality=95)
    assert main(["compress", str(src)]) == 0
    assert main(["decompress", str(tmp_path / "photo.mlic")]) == 0
    assert Image.open(tmp_path / "photo.png").size == (160, 120)


def test_float16_storage_halves_the_file_and_names_the_weights_by_their_float32_state(tmp_path):
    import torch

    from conftest import TINY
    from mlic.io import save_model
    from mlic.models import build

    torch.manual_seed(0)
    model = build("mlic-plus", **TINY).eval()
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    save_model(model, full)
    save_model(model, half, half=True)
    float_bytes = sum(v.numel() * 4 for v in model.state_dict().values() if v.is_floating_point())
    assert full.stat().st_size - half.stat().st_size > 0.49 * float_bytes  # floats stored in 2 bytes, not 4
    loaded = load_model(half)
    assert all(v.dtype != torch.float16 for v in loaded.state_dict().values())
    # the digest is that of the float32 state the model runs with (recomputed here, not trusted)
    rounded = {k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    from mlic.io.weights import state_digest

    assert model_digest(loaded) == state_digest(rounded) != model_digest(load_model(full))
    assert torch.equal(loaded.entropy_bottleneck.cdf, model.entropy_bottleneck.cdf)  # tables stay exact
    # a flipped bit in the stored halves is caught
    raw = bytearray(half.read_bytes())
    raw[-200] ^= 0x01
    (tmp_path / "bad.safetensors").write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="corrupted"):
        load_model(tmp_path / "bad.safetensors")


def test_eval_of_bundled_models_records_their_weights(tmp_path):
    import json

    from PIL import Image

    from mlic.eval.report import _model_codec_for
    from mlic.eval.results import load_results

    src = tmp_path / "crop.png"
    Image.open(SAMPLE).crop((100, 100, 292, 292)).save(src)
    out = tmp_path / "bundled.json"
    assert main(["eval", str(src), "-o", str(out), "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert res["results"]["quality"] == [e.quality for e in sorted(ENTRIES, key=lambda e: e.quality)]
    assert [p["sha256"] for p in res["points"]] == [e.sha256 for e in sorted(ENTRIES, key=lambda e: e.quality)]
    assert res["points"][0]["weights"].startswith("bundled:mlic-plus/mse/q")
    # the report rebuilds the same codec from the record: same bytes, same picture
    coded = _model_codec_for(load_results(out), 0)(np.asarray(Image.open(src).convert("RGB")))
    assert coded.bits / (192 * 192) == pytest.approx(res["results"]["bpp"][0])
