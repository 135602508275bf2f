"""Variable rate (gain units): one set of weights, any quality in its range, the same bits in
every process; the quality travels in the file header (docs/format.md, "Variable rate")."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import TINY, kodak_rgb
from mlic.codec import compress_image, decompress_bytes
from mlic.errors import DesyncError
from mlic.io import save_model
from mlic.io.container import FormatError, unpack
from mlic.io.image import ImageData
from mlic.models import build
from mlic.models.mlic import quality_code

LAMBDAS = (0.0035, 0.0067, 0.013, 0.025, 0.0483)


def vr_model(seed: int = 0):
    torch.manual_seed(seed)
    model = build("mlic-plus", rate_lambdas=LAMBDAS, first_quality=2, z_gains=True, **TINY).eval()
    with torch.no_grad():  # distinct gains per level and channel, inverse gains not exactly 1/gain
        model.log_gain.copy_(torch.linspace(1.0, 3.0, len(LAMBDAS))[:, None] + 0.2 * torch.randn_like(model.log_gain))
        model.log_inverse_gain.copy_(-model.log_gain + 0.05 * torch.randn_like(model.log_gain))
        model.log_z_gain.copy_(torch.linspace(-0.5, 0.5, len(LAMBDAS))[:, None] + 0.2 * torch.randn_like(model.log_z_gain))
        model.log_z_inverse_gain.copy_(-model.log_z_gain + 0.05 * torch.randn_like(model.log_z_gain))
    model.update(force=True)
    return model


@pytest.fixture(scope="module")
def vr():
    return vr_model()


def test_config_checks_the_levels():
    with pytest.raises(ValueError, match="increasing"):
        build("mlic-plus", rate_lambdas=(0.01, 0.005), **TINY)
    with pytest.raises(ValueError, match="at least two"):
        build("mlic-plus", rate_lambdas=(0.01,), **TINY)
    with pytest.raises(ValueError, match="positive"):
        build("mlic-plus", rate_lambdas=(0.0, 0.01), **TINY)
    with pytest.raises(ValueError, match="z_gains"):
        build("mlic-plus", z_gains=True, **TINY)
    assert build("mlic-plus", rate_lambdas=LAMBDAS, first_quality=2, **TINY).config.quality_range == (2, 6)


def test_gains_hit_the_levels_and_interpolate_geometrically(vr):
    # whole qualities give exactly each level's gains (scalar math.exp: not a SIMD kernel, whose
    # last bit may differ between CPUs)
    names = ("log_gain", "log_inverse_gain", "log_z_gain", "log_z_inverse_gain")
    for level in range(len(LAMBDAS)):
        gains = vr.rate_gains(2.0 + level, torch.float64)
        for g, name in zip(gains, names):
            assert g.flatten().tolist() == [math.exp(v) for v in getattr(vr, name)[level].tolist()]
    gains = vr.rate_gains(3.25, torch.float64)
    for g, name in zip(gains, names):
        p = getattr(vr, name).double()
        torch.testing.assert_close(g.flatten(), (0.75 * p[1] + 0.25 * p[2]).exp(), rtol=1e-14, atol=0)
    assert vr.rate_lambda(3.5) == pytest.approx(math.sqrt(LAMBDAS[1] * LAMBDAS[2]))
    # training's per-image tensor path gives the scalar path's values (to float32 rounding)
    batch = vr.rate_gains(torch.tensor([3.25, 6.0]))
    for k in range(4):
        torch.testing.assert_close(batch[k][0], vr.rate_gains(3.25)[k][0])
        torch.testing.assert_close(batch[k][1], vr.rate_gains(6.0)[k][0])
    for bad in (1.99, 6.01, math.nan):
        with pytest.raises(ValueError, match="2-6"):
            vr.rate_gains(bad)
    with pytest.raises(ValueError, match="needs a quality"):
        vr.rate_gains(None)


def test_unit_gains_reproduce_the_one_rate_model_exactly():
    torch.manual_seed(1)
    plain = build("mlic-plus", **TINY).eval()
    vr = build("mlic-plus", rate_lambdas=LAMBDAS, first_quality=2, z_gains=True, **TINY).eval()
    missing, _ = vr.load_state_dict(plain.state_dict(), strict=False)
    assert set(missing) == {"log_gain", "log_inverse_gain", "log_z_gain", "log_z_inverse_gain"}  # zeros: gain 1
    x = torch.from_numpy(kodak_rgb(h=64, w=128)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        a, b = plain(x), vr(x, 4.5)
    assert torch.equal(a["y_hat"], b["y_hat"]) and torch.equal(a["likelihoods"]["y"], b["likelihoods"]["y"])


def test_rates_rise_with_quality_and_files_decode_exactly_at_fractional_qualities(vr):
    img = ImageData(kodak_rgb(h=96, w=160))
    sizes = []
    for q in (2.0, 2.5, 3.75, 5.125, 6.0):
        data = compress_image(vr, img, quality=q, verify=True)
        assert unpack(data).header.quality == q
        assert decompress_bytes(data, vr).rgb.shape == (96, 160, 3)
        sizes.append(len(data))
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), sizes
    # the header's quality is what the decoder uses: another quality desynchronises
    f = unpack(compress_image(vr, img, quality=3.75))
    f.header.quality = 3.5
    with pytest.raises(DesyncError):
        decompress_bytes(f.to_bytes(), vr)
    f.header.quality = 7.0  # outside the weights' range
    with pytest.raises(FormatError, match="outside the range"):
        decompress_bytes(f.to_bytes(), vr)
    with pytest.raises(ValueError, match="version 4"):
        compress_image(vr, img, quality=3, version=3)


def test_encoder_and_decoder_in_separate_processes_agree_at_fractional_qualities(tmp_path, vr):
    """Encode in one fresh process (1 thread), decode in another (2 threads, fp32 transforms):
    the desync guard checks every symbol, and the pixels match an in-process decode."""
    weights = tmp_path / "vr.safetensors"
    save_model(vr, weights)
    src = tmp_path / "img.png"
    from PIL import Image

    Image.fromarray(kodak_rgb(h=128, w=192)).save(src)
    run = lambda *a, threads: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "mlic.cli.main", *map(str, a), "--weights", str(weights), "--threads", str(threads)],
        capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    for q in ("2.3", "4.75", "5.5"):
        mlic, png = tmp_path / f"q{q}.mlic", tmp_path / f"q{q}.png"
        r = run("compress", src, "-o", mlic, "--quality", q, threads=1)
        assert r.returncode == 0, r.stderr
        assert unpack(mlic.read_bytes()).header.quality == quality_code(float(q)) / 256
        r = run("decompress", mlic, "-o", png, "--precision", "fp32", threads=2)
        assert r.returncode == 0, r.stderr
        vr.transform_precision = "fp32"
        expected = decompress_bytes(mlic.read_bytes(), vr).rgb
        vr.transform_precision = "auto"
        got = np.asarray(Image.open(png).convert("RGB"))
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # g_s kernels may differ by a level


def test_target_bytes_never_exceeds_the_target_and_lands_close(vr):
    from mlic.target import TargetError, compress_to_target

    for name, where in (("kodim05.png", 0.3), ("kodim13.png", 0.5), ("kodim23.png", 0.8)):
        img = ImageData(kodak_rgb(name, h=128, w=128))
        smallest, largest = (len(compress_image(vr, img, quality=q)) for q in (2, 6))
        target = int(smallest ** (1 - where) * largest**where)  # inside the range: the 7 % rule applies
        r = compress_to_target(vr, img, target_bytes=target)
        assert len(r.data) <= target and len(r.data) >= 0.93 * target, (name, len(r.data), r.quality)
        assert unpack(r.data).header.quality == r.quality
        with pytest.raises(TargetError, match="below the smallest file"):
            compress_to_target(vr, img, target_bytes=smallest - 1)
        top = compress_to_target(vr, img, target_bytes=10 * largest)  # more than the range needs
        assert len(top.data) == largest and top.quality == 6 and top.note


def test_targets_need_variable_rate_weights():
    from mlic.target import TargetError, compress_to_target

    torch.manual_seed(0)
    model = build("mlic-plus", **TINY).eval()
    with pytest.raises(TargetError, match="variable-rate"):
        compress_to_target(model, ImageData(kodak_rgb(h=64, w=64)), target_bytes=1000)
