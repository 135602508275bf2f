"""Entropy-model health: the collapse detector, the revival of dead z channels, the z warm-up."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from conftest import TINY, synthetic_photos

from mlic.io.weights import save_model
from mlic.models import build
from mlic.models.health import MIN_ACTIVE_Z, OUTLIER, rate_health
from mlic.models.loss import bits_per_pixel
from mlic.nn import scale_gradient
from mlic.train import TrainConfig, train
from mlic.train.data import CropStream
from mlic.train.loop import CollapseWatch
from mlic.train.revive import dead_z_channels, revive_hyperprior


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return synthetic_photos(tmp_path_factory.mktemp("health-imgs"), 3, 160, 200, seed=5, noise=12)


def tiny(seed: int = 0):
    torch.manual_seed(seed)
    model = build("mlic-plus", **TINY)
    model.transform_precision = "fp32"
    return model


def collapse(model) -> None:
    """What a collapsed hyperprior looks like: h_a writes a constant, every z symbol is 0."""
    with torch.no_grad():
        model.h_a[-1].weight.zero_()
        model.h_a[-1].bias.zero_()


def config(folder, out, init, **kw) -> TrainConfig:
    base = dict(data=[str(folder)], out=str(out), model="mlic-plus", model_overrides=dict(TINY), lmbda=0.01,
                steps=8, batch=4, crops="128", lr=1e-4, warmup=0, lr_drops="", checkpoint_every=0,
                validate_every=0, seed=4, precision="fp32", log_every=1, init=str(init))  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def log_rows(run: Path) -> list[dict]:
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


def test_health_counts_every_bit_and_splits_them_by_slice_and_half():
    model = tiny().eval()
    x = torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        out = model(x)
    h = rate_health(model, out)
    total = float(bits_per_pixel(out["likelihoods"], 1))
    assert math.isclose(h.y_bits + h.z_bits, total, rel_tol=1e-5)
    assert math.isclose(sum(sum(d.values()) for d in h.slice_bits), h.y_bits, rel_tol=1e-9)
    lik = out["likelihoods"]["y"]
    outlier_bits = float((-torch.log2(lik.double()) * (lik < OUTLIER)).sum())
    assert math.isclose(h.outlier_share * h.y_bits, outlier_bits, rel_tol=1e-9, abs_tol=1e-9)
    assert h.z_channels == TINY["N"]


def test_detector_flags_a_collapsed_hyperprior_and_not_a_live_one(folder):
    data = CropStream([folder], seed=1)
    batch = data.batch(0, 4, 128)
    model = tiny().eval()
    revive_hyperprior(model, [batch])  # z well above the rounding: alive
    with torch.no_grad():
        live = rate_health(model, model(batch))
    assert live.active_z == TINY["N"] and not any("collapsed" in p for p in live.problems())
    collapse(model)
    with torch.no_grad():
        dead = rate_health(model, model(batch))
    assert dead.active_z == 0
    assert any("hyperprior collapsed" in p for p in dead.problems())


def test_training_warns_when_it_runs_with_a_collapsed_hyperprior(folder, tmp_path, capsys):
    collapsed = tiny()
    collapse(collapsed)
    save_model(collapsed, tmp_path / "collapsed.safetensors")
    train(config(folder, tmp_path / "run", tmp_path / "collapsed.safetensors"), progress=False)
    err = capsys.readouterr().err
    assert "hyperprior has collapsed" in err
    rows = log_rows(tmp_path / "run")
    assert all(int(r["z_active"]) < MIN_ACTIVE_Z * TINY["N"] for r in rows)
    assert all(0.0 <= float(r["y_outliers"]) <= 1.0 for r in rows)


def test_revived_training_keeps_z_alive_and_does_not_warn(folder, tmp_path, capsys):
    collapsed = tiny()
    collapse(collapsed)
    save_model(collapsed, tmp_path / "collapsed.safetensors")
    train(config(folder, tmp_path / "run", tmp_path / "collapsed.safetensors", revive_z=True, z_warmup=8),
          progress=False)  # fmt: skip
    err = capsys.readouterr().err
    assert f"revived {TINY['N']} of {TINY['N']} z channels" in err
    assert "hyperprior has collapsed" not in err
    assert all(int(r["z_active"]) >= MIN_ACTIVE_Z * TINY["N"] for r in log_rows(tmp_path / "run"))


def test_collapse_watch_needs_a_run_of_low_readings():
    class Reading:
        z_channels = 40

        def __init__(self, active):
            self.active_z = active

    watch = CollapseWatch(window=3)
    assert not any(watch.see(s, Reading(a)) for s, a in enumerate([0, 0, 30, 0, 0]))  # interrupted: no warning
    assert watch.see(5, Reading(0))  # third low reading in a row
    assert not watch.see(6, Reading(0))  # once per run


def test_revival_wakes_only_dead_channels_and_keeps_predictions_inside(folder):
    data = CropStream([folder], seed=2)
    probe = [data.batch(0, 4, 128)]
    model = tiny(1).eval()
    revive_hyperprior(model, probe, target_std=2.0)  # every channel clearly alive
    with torch.no_grad():
        model.h_a[-1].weight[: TINY["N"] // 2] *= 1e-3  # then half of them dead
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dead = dead_z_channels(model, probe)
    assert dead[: TINY["N"] // 2].all() and not dead[TINY["N"] // 2 :].any()
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        ref = model.h_s(model.forward(x)["z_hat"])
    revived = revive_hyperprior(model, probe)
    assert revived == list(range(TINY["N"] // 2))
    assert not dead_z_channels(model, probe).any()
    after = model.state_dict()
    live = slice(TINY["N"] // 2, None)
    assert torch.equal(after["h_a.8.weight"][live], before["h_a.8.weight"][live])
    assert torch.equal(after["entropy_bottleneck.quantiles"][live], before["entropy_bottleneck.quantiles"][live])
    for k, old in before.items():  # nothing outside h_a's last layer, h_s's first and the bottleneck moved
        if not k.startswith(("h_a.8.", "h_s.0.", "entropy_bottleneck.")):
            assert torch.equal(after[k], old), k
    with torch.no_grad():
        now = model.h_s(model.forward(x)["z_hat"])
    # h_s ignores the revived channels: its output is unchanged away from the borders
    # (z is 4x4 here; the three 3x3 layers at z's scale reach one z position in from each side)
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    assert torch.allclose(now[inner], ref[inner], atol=1e-5)


def test_scale_gradient_scales_only_the_gradient():
    x = torch.randn(5, requires_grad=True)
    y = scale_gradient(x, 0.25)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full((5,), 0.25))


def test_z_warmup_schedule_and_checks():
    cfg = TrainConfig(data=["d"], z_warmup=100)
    assert cfg.z_weight_at(0) == 0.0 and cfg.z_weight_at(50) == 0.5 and cfg.z_weight_at(100) == 1.0
    assert TrainConfig(data=["d"]).z_weight_at(0) == 1.0
    with pytest.raises(ValueError, match="revive-z needs init"):
        TrainConfig(data=["d"], revive_z=True).validate()
    with pytest.raises(ValueError, match="z-warmup"):
        TrainConfig(data=["d"], z_warmup=-1).validate()
