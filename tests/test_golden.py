"""Golden bitstreams: files written by earlier builds still decode, bit-exactly on the
probability path (any drift trips the desync guard), to the recorded quality."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from mlic import zoo
from mlic.codec import decompress_bytes
from mlic.eval import psnr_rgb
from mlic.io.container import peek_header
from mlic.io.image import read_image
from mlic.models import MLIC

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text()) if (GOLDEN / "manifest.json").exists() else {"files": []}


def _crop() -> np.ndarray:
    rgb = read_image(Path(str(resources.files("mlic") / "samples" / "astronaut.png"))).rgb
    top, left, h, w = MANIFEST["box"]
    return rgb[top : top + h, left : left + w]


def test_golden_files_exist_for_every_bundled_model_and_both_versions():
    have = {(f["model"], f["metric"], f["quality"], f["weights_sha256"]) for f in MANIFEST["files"]}
    for e in zoo.entries():
        assert (e.model, e.metric, e.quality, e.sha256) in have, f"no golden file for {e.file}: run scripts/make-golden"
    assert {f["format_version"] for f in MANIFEST["files"]} == {1, 2}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("golden", MANIFEST["files"], ids=lambda f: f["file"])
def test_golden_file_decodes_exactly(golden, threads):
    data = (GOLDEN / golden["file"]).read_bytes()
    header = peek_header(data)
    assert header.version == golden["format_version"]
    entry = zoo.by_tag(header.model, header.weights_hash)
    assert entry is not None and entry.sha256 == golden["weights_sha256"]
    model = zoo.load(entry)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = decompress_bytes(data, model)  # a changed probability path raises DesyncError here
    finally:
        torch.set_num_threads(saved)
    assert abs(psnr_rgb(_crop(), out.rgb) - golden["psnr"]) < 0.02


def test_layout_optimisation_leaves_the_probability_path_bit_exact(monkeypatch):
    """The fast path (channels-last g_a / g_s) against the unoptimised NCHW reference path."""
    golden = next(f for f in MANIFEST["files"] if f["format_version"] == 2)
    data = (GOLDEN / golden["file"]).read_bytes()
    model = zoo.load(zoo.by_tag(golden["model"], bytes.fromhex(golden["weights_sha256"])[:8]))
    x = torch.from_numpy(np.ascontiguousarray(_crop())).permute(2, 0, 1)[None].float() / 255
    fast_enc = model.compress(x)
    fast_dec = decompress_bytes(data, model)
    monkeypatch.setattr(MLIC, "_layout", staticmethod(lambda t: t.contiguous()))  # the reference path
    ref_enc = model.compress(x)
    ref_dec = decompress_bytes(data, model)
    # decoding a stream: identical latent (the checksums passed in both), pixels within a level
    assert np.abs(fast_dec.rgb.astype(int) - ref_dec.rgb.astype(int)).max() <= 1
    # encoding: g_a's layout may move y by float noise (the encoder's choice); the stream of
    # either encoder decodes to its exact latent on the other path
    monkeypatch.undo()
    dec = model.decompress(ref_enc["strings"], ref_enc["shape"], ref_enc["image_size"], checks=ref_enc["checks"])
    assert torch.equal(dec["y_hat"], ref_enc["y_hat"])
    monkeypatch.setattr(MLIC, "_layout", staticmethod(lambda t: t.contiguous()))
    dec = model.decompress(fast_enc["strings"], fast_enc["shape"], fast_enc["image_size"], checks=fast_enc["checks"])
    assert torch.equal(dec["y_hat"], fast_enc["y_hat"])
