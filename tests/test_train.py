"""Training: the loss goes down, resume is exact, interrupts save, export feeds the codec, DDP matches."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, synthetic_photos
from PIL import Image

from mlic.cli.main import main
from mlic.train import TrainConfig, train
from mlic.train.config import parse_crops
from mlic.train.data import CropStream, DataError
from mlic.train.loop import load_checkpoint


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = synthetic_photos(tmp_path_factory.mktemp("imgs"), 4, 96, 128, seed=0, noise=6, jpeg_every=2)
    (d / "notes.txt").write_text("ignored")
    return d


def tiny_config(folder, out, **kw) -> TrainConfig:
    base = dict(data=[str(folder)], out=str(out), model="mlic-plus", model_overrides=dict(TINY), lmbda=0.01,
                steps=40, batch=4, crops="64", lr=1e-3, warmup=5, lr_drops="0.75:0.3", checkpoint_every=0,
                validate_every=0, seed=3, precision="fp32", log_every=1)  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def trained_tiny(folder, run: Path, steps: int) -> Path:
    """A TINY model trained ``steps`` steps in ``run`` and exported next to it: the weights file."""
    train(tiny_config(folder, run, steps=steps), progress=False)
    weights = run.with_suffix(".safetensors")
    assert main(["export", str(run / "last.ckpt"), "-o", str(weights)]) == 0
    return weights


def train_tiny_cli(folder, run: Path, init: Path, *extra: str) -> Path:
    """`mlic train` (3 steps) of the TINY model from ``init`` with ``extra`` options, exported
    next to ``run``; returns the weights file."""
    import json

    sets = [arg for k, v in TINY.items() for arg in ("--set", f"{k}={json.dumps(list(v) if isinstance(v, tuple) else v)}")]
    assert main(["train", str(folder), "--model", "mlic-plus", *sets, "--init", str(init), "--steps", "3", "--batch",
                 "2", "--crop", "64", "--warmup", "0", "--precision", "fp32", "--quiet", "--checkpoint-every", "0",
                 "--val", "none", "--lambda", "0.01", "--out", str(run), *extra]) == 0  # fmt: skip
    weights = run.with_suffix(".safetensors")
    assert main(["export", str(run / "last.ckpt"), "-o", str(weights)]) == 0
    return weights


def losses(run: Path) -> list[float]:
    with open(run / "log.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f) if r["loss"]]


def test_batches_depend_only_on_seed_and_step(folder):
    data = CropStream([folder], seed=1)
    assert len(data) == 4
    a = data.batch(7, 4, 64)
    assert torch.equal(a, data.batch(7, 4, 64))
    assert not torch.equal(a, data.batch(8, 4, 64))
    halves = torch.cat([data.batch(7, 4, 64, rank=r, world=2) for r in range(2)])
    assert torch.equal(a, halves)
    assert parse_crops("256,512@0.8") == [(0.0, 256), (0.8, 512)]
    with pytest.raises(ValueError):
        parse_crops("100")


def test_pyramid_and_detail_biased_crops(tmp_path):
    # one 512x512 source: left half flat grey, right half noise
    rng = np.random.default_rng(0)
    img = np.full((512, 512, 3), 120, np.uint8)
    img[:, 256:] = rng.integers(0, 256, (512, 256, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "half.png")
    plain = CropStream([tmp_path], seed=0)
    levels = CropStream([tmp_path], seed=0, pyramid=3)
    assert [im.shape[:2] for im in levels.images] == [(512, 512), (256, 256)]  # stops below 256
    uniform = plain.batch(0, 64, 64)
    picked = CropStream([tmp_path], seed=0, candidates=4).batch(0, 64, 64)

    def flat_share(b):
        return float((b.flatten(1).std(1) < 1e-3).float().mean())

    assert flat_share(uniform) > 0.2  # uniform crops often land on the flat half
    assert flat_share(picked) < flat_share(uniform) / 3
    assert torch.equal(picked, CropStream([tmp_path], seed=0, candidates=4).batch(0, 64, 64))
    with pytest.raises(DataError):
        CropStream([tmp_path], candidates=0)


def test_tiny_model_loss_goes_down(folder, tmp_path):
    cfg = tiny_config(folder, tmp_path / "run", steps=100)
    train(cfg, progress=False)
    curve = losses(tmp_path / "run")
    assert len(curve) == 100
    assert np.mean(curve[-10:]) < 0.6 * np.mean(curve[:10])


def test_resume_after_sigint_reproduces_the_uninterrupted_run(folder, tmp_path):
    torch.use_deterministic_algorithms(True)
    try:
        full = tiny_config(folder, tmp_path / "full", deterministic=True)
        train(full, progress=False)

        def interrupt(step, stats):
            if step == 17:
                signal.raise_signal(signal.SIGINT)  # the real handler: save and stop

        part = tiny_config(folder, tmp_path / "part", deterministic=True)
        train(part, progress=False, callback=interrupt)
        assert load_checkpoint(tmp_path / "part" / "last.ckpt")["step"] == 17
        train(part, resume=True, progress=False)
    finally:
        torch.use_deterministic_algorithms(False)
    a = load_checkpoint(tmp_path / "full" / "last.ckpt")
    b = load_checkpoint(tmp_path / "part" / "last.ckpt")
    assert a["step"] == b["step"] == 40
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert losses(tmp_path / "full") == losses(tmp_path / "part")


def test_export_then_compress(folder, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_config(folder, run, steps=5), progress=False)
    weights = tmp_path / "w.safetensors"
    assert main(["export", str(run / "last.ckpt"), "-o", str(weights)]) == 0
    assert weights.with_suffix(".json").exists()
    img = next(folder.glob("*.png"))
    out = tmp_path / "x.mlic"
    assert main(["compress", str(img), "-o", str(out), "--weights", str(weights), "--verify"]) == 0
    assert main(["export", str(run / "last.ckpt"), "-o", str(weights)]) == 2  # no overwrite
    assert main(["train", str(folder), "--out", str(tmp_path / "r2")]) == 1  # no lambda
    assert main(["export", str(img), "-o", str(tmp_path / "y.safetensors")]) == 2


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX only")
def test_two_process_ddp_matches_one_process(folder, tmp_path):
    common = [str(folder), "--model", "mlic-plus", "--lambda", "0.01", "--steps", "8", "--batch", "4",
              "--crop", "64", "--lr", "1e-3", "--warmup", "2", "--seed", "5", "--precision", "fp32",
              "--threads", "1", "--checkpoint-every", "0", "--validate-every", "0", "--log-every", "1", "--quiet"]  # fmt: skip
    for key, value in TINY.items():
        common += ["--set", f"{key}={list(value) if isinstance(value, tuple) else value}".replace(" ", "")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "-m", "mlic.cli.main", "train", *common, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                          "-m", "mlic.cli.main", "train", *common, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = np.array(losses(tmp_path / "one")), np.array(losses(tmp_path / "two"))
    assert len(a) == len(b) == 8
    # same data and same initial weights; only the quantisation noise differs between the runs
    np.testing.assert_allclose(a, b, rtol=0.02)
    assert load_checkpoint(tmp_path / "two" / "last.ckpt")["world"] == 2


def test_revive_channels_scales_only_the_unused_rows(folder, tmp_path):
    """scripts/revive-channels: rows of g_a's last conv of channels under the threshold are
    multiplied by the gain, all other tensors stay as they were."""
    from mlic.io import load_model, save_model
    from mlic.models import build

    src, dst = tmp_path / "in.safetensors", tmp_path / "out.safetensors"
    save_model(build("mlic-plus", **TINY), src)
    script = Path(__file__).resolve().parents[1] / "scripts" / "revive-channels"
    run = lambda *a: subprocess.run([sys.executable, str(script), str(src), str(dst), "--data", str(folder), *a],  # noqa: E731
                                    capture_output=True, text=True)  # fmt: skip
    r = run("--threshold", "0", "--gain", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("0 of 32 channels")
    before, after = load_model(src).state_dict(), load_model(dst).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    r = run("--threshold", "1.01", "--gain", "3")  # every channel is "unused"
    assert r.returncode == 0 and r.stdout.startswith("32 of 32 channels"), r.stderr
    after = load_model(dst).state_dict()
    key = [k for k in before if k.startswith("g_a.") and k.endswith(".weight")][-1]
    torch.testing.assert_close(after[key], 3 * before[key])
    assert all(torch.equal(before[k], after[k]) for k in before if k != key)


def test_variable_rate_training_from_one_rate_weights(folder, tmp_path):
    """`mlic train --variable-rate` from one-rate weights: every level starts at the source
    weights with gains sqrt(lambda_level / lambda_source); each image trains at a drawn level;
    the exported weights code at any quality of the range."""
    import json
    import math

    from mlic.io.weights import load_model
    from mlic.train.loop import draw_qualities

    one = tmp_path / "one"
    train(tiny_config(folder, one, steps=3, lmbda=0.013), progress=False)
    src = tmp_path / "one.safetensors"
    assert main(["export", str(one / "last.ckpt"), "-o", str(src)]) == 0
    sets = [arg for k, v in TINY.items() for arg in ("--set", f"{k}={json.dumps(list(v) if isinstance(v, tuple) else v)}")]
    common = [str(folder), "--model", "mlic-plus", *sets, "--steps", "6", "--batch", "4", "--crop", "64",
              "--warmup", "0", "--lr", "1e-3", "--precision", "fp32", "--quiet", "--checkpoint-every", "0"]  # fmt: skip
    run = tmp_path / "vr"
    from mlic.models import build
    from mlic.train.loop import _initial_weights

    lambdas = (0.0067, 0.0130, 0.0250)
    fresh = build("mlic-plus", rate_lambdas=lambdas, first_quality=3, z_gains=True, **TINY)
    _initial_weights(fresh, str(src))  # what --init does
    start = {k: v.detach().clone() for k, v in fresh.state_dict().items()}
    for level, lam in enumerate(lambdas):
        assert torch.allclose(start["log_gain"][level], torch.full((TINY["M"],), 0.5 * math.log(lam / 0.013)))
    assert torch.equal(start["log_inverse_gain"], -start["log_gain"])
    assert not start["log_z_gain"].any() and not start["log_z_inverse_gain"].any()  # z gains start at 1
    assert main(["train", *common, "--out", str(run), "--variable-rate", "3-5", "--init", str(src)]) == 0
    assert main(["train", *common, "--out", str(tmp_path / "bad"), "--variable-rate", "3-5", "--lambda", "0.01"]) == 1
    assert main(["train", *common, "--out", str(tmp_path / "bad"), "--variable-rate", "5-3"]) == 1
    weights = tmp_path / "vr.safetensors"
    assert main(["export", str(run / "last.ckpt"), "-o", str(weights)]) == 0
    model = load_model(weights)
    assert model.config.rate_lambdas == lambdas and model.config.quality_range == (3, 5) and model.config.z_gains
    assert not torch.equal(model.log_gain, start["log_gain"])  # the gains trained
    img = next(folder.glob("*.png"))
    assert main(["compress", str(img), "-o", str(tmp_path / "x.mlic"), "--weights", str(weights), "--quality", "3.6",
                 "--verify"]) == 0  # fmt: skip
    # the levels drawn depend only on (seed, step, rank), and cover the range
    a, b = draw_qualities(model, 7, 64, 3, 0), draw_qualities(model, 7, 64, 3, 0)
    assert torch.equal(a, b) and set(a.tolist()) == {3.0, 4.0, 5.0}
    assert not torch.equal(a, draw_qualities(model, 8, 64, 3, 0))


def test_periodic_checkpoints_are_written(folder, tmp_path):
    """`--checkpoint-every N` keeps step-N.ckpt files (the loop's batch output once shadowed the
    run folder's name there, so the first periodic save crashed the run)."""
    train(tiny_config(folder, tmp_path / "run", steps=4, checkpoint_every=2), progress=False)
    assert sorted(p.name for p in (tmp_path / "run").glob("step-*.ckpt")) == ["step-2.ckpt", "step-4.ckpt"]
    assert load_checkpoint(tmp_path / "run" / "step-2.ckpt")["step"] == 2


def test_wider_transforms_start_from_narrower_weights(folder, tmp_path):
    """`--init` narrower weights with `--set transform_channels=W`: the wider model codes exactly
    what the trained one did at first, its added g_a / g_s channels get gradients, it trains, and
    its files decode; `--val none` turns validation off as the help says."""
    from mlic.io.weights import load_model
    from mlic.models import build
    from mlic.train.loop import _initial_weights

    src_file = trained_tiny(folder, tmp_path / "one", steps=3)
    src = load_model(src_file).eval()
    wide = build("mlic-plus", transform_channels=24, **TINY)
    assert build("mlic-plus", transform_channels=TINY["N"], **TINY).config == src.config  # one spelling
    _initial_weights(wide, str(src_file))
    assert wide.g_a[0].conv1.weight.shape[0] == 24 and wide.h_a[0].weight.shape[1] == TINY["M"]
    x = torch.rand(1, 3, 64, 96)
    wide.eval()
    with torch.no_grad():
        a, b = src(x), wide(x)
    assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-5)
    for k in a["likelihoods"]:
        assert torch.allclose(a["likelihoods"][k], b["likelihoods"][k], rtol=1e-4, atol=1e-6)
    # the added channels reach the output through weights that start at zero, so they learn from
    # the last layer backwards: after as many steps as g_a has layers, all of them have moved
    n = TINY["N"]
    assert not wide.g_s[-1][0].weight[:, n:].any() and not wide.g_a[-1].weight[:, n:].any()
    first = wide.g_a[0].conv1.weight[n:].detach().clone()
    opt = torch.optim.Adam([p for name, p in wide.named_parameters() if name.startswith(("g_a", "g_s"))], lr=1e-3)
    wide.train()
    for _ in range(16):
        opt.zero_grad()
        out = wide(x)
        (out["x_hat"] - x).square().mean().add(out["likelihoods"]["y"].log().mean().neg()).backward()
        opt.step()
    assert wide.g_s[-1][0].weight[:, n:].any() and wide.g_a[-1].weight[:, n:].any()
    assert not torch.equal(wide.g_a[0].conv1.weight[n:], first)
    with pytest.raises(ValueError):
        build("mlic-plus", transform_channels=0, **TINY)

    weights = train_tiny_cli(folder, tmp_path / "wide", src_file, "--set", "transform_channels=24", "--validate-every", "2")
    assert load_model(weights).config.transform_width == 24
    img = next(folder.glob("*.png"))
    assert main(["compress", str(img), "-o", str(tmp_path / "w.mlic"), "--weights", str(weights), "--verify"]) == 0
    narrow = build("mlic-plus", transform_channels=8, **TINY)
    with pytest.raises(Exception, match="architecture differs"):
        _initial_weights(narrow, str(src_file))


def test_cli_defaults_are_the_config_defaults(folder, tmp_path):
    """`mlic train` without options runs what TrainConfig() says (the defaults have one home)."""
    from dataclasses import fields

    from mlic.cli.main import build_parser, train_config

    args = build_parser().parse_args(["train", str(folder), "--out", str(tmp_path / "r"), "--lambda", "0.013"])
    cfg, default = train_config(args), TrainConfig()
    differ = {f.name for f in fields(TrainConfig) if getattr(cfg, f.name) != getattr(default, f.name)}
    assert differ <= {"data", "out", "val_data"}, differ  # val_data: $MLIC_VAL may set it


def test_compile_is_each_legs_own_choice(folder, tmp_path):
    """`--compile` reaches the run's configuration, and a resumed run takes it from its own command
    line, not from the checkpoint (a leg on a GPU may compile, the next one on a CPU may not)."""
    from mlic.cli.main import build_parser, train_config

    run = tmp_path / "r"
    base = ["train", str(folder), "--out", str(run)]
    assert train_config(build_parser().parse_args([*base, "--lambda", "0.013", "--compile"])).compile is True
    train(tiny_config(folder, run, steps=1, compile=False), progress=False)
    assert train_config(build_parser().parse_args([*base, "--resume", "--compile"])).compile is True
    ckpt = load_checkpoint(run / "last.ckpt")
    ckpt["config"]["compile"] = True
    torch.save(ckpt, run / "last.ckpt")
    assert train_config(build_parser().parse_args([*base, "--resume"])).compile is False


def test_max_minutes_stops_and_saves_in_time(folder, tmp_path):
    """`--max-minutes`: the run stops at the deadline, however many steps were asked for, and
    leaves a checkpoint that resumes."""
    import time

    t0 = time.perf_counter()
    last = train(tiny_config(folder, tmp_path / "run", steps=100_000, max_seconds=3.0), progress=False)
    assert time.perf_counter() - t0 < 60
    step = load_checkpoint(last)["step"]
    assert 1 <= step < 100_000
    with pytest.raises(ValueError, match="max-minutes"):
        tiny_config(folder, tmp_path / "bad", max_seconds=-1.0).validate()


def test_train_only_moves_the_named_modules_alone(folder, tmp_path, capsys):
    """`--train-only g_a`: after the run, g_a differs from the --init weights and every other
    tensor (g_s, the entropy model, the gains) is bit-identical, except the bottleneck's
    quantiles and the z tables built from them (the auxiliary loss always trains); the frozen
    weights get no optimiser state; an unknown name or a run without --init is a one-line error."""
    from safetensors.torch import load_file

    init = trained_tiny(folder, tmp_path / "start", steps=2)
    run = tmp_path / "enc"
    train(tiny_config(folder, run, steps=3, init=str(init), train_only="g_a", seed=5), progress=False)
    after = tmp_path / "enc.safetensors"
    assert main(["export", str(run / "last.ckpt"), "-o", str(after)]) == 0
    a, b = load_file(init), load_file(after)
    assert a.keys() == b.keys()
    tables = ("entropy_bottleneck.quantiles", "entropy_bottleneck.cdf", "entropy_bottleneck.cdf_length",
              "entropy_bottleneck.offset")
    moved = {k for k in a if not torch.equal(a[k], b[k]) and k not in tables}
    assert moved and all(k.startswith("g_a.") for k in moved), sorted(moved)[:5]
    ckpt = load_checkpoint(run / "last.ckpt")
    n_g_a = sum(1 for k in ckpt["model"] if k.startswith("g_a.") and ckpt["model"][k].is_floating_point())
    assert len(ckpt["optimizer"]["state"]) == n_g_a
    with pytest.raises(Exception, match="no module 'g_x'"):
        train(tiny_config(folder, tmp_path / "bad", steps=1, init=str(init), train_only="g_x"), progress=False)
    with pytest.raises(ValueError, match="needs init"):
        tiny_config(folder, tmp_path / "bad2", train_only="g_a").validate()
    capsys.readouterr()
    assert main(["train", str(folder), "--lambda", "0.01", "--train-only", "g_a,", "--init", str(init),
                 "--out", str(tmp_path / "bad3")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train-only" in err


def test_wider_encoder_alone_starts_from_trained_weights(folder, tmp_path):
    """`--set analysis_channels=W` widens g_a only: the model first codes exactly what the
    trained one did, g_s keeps its width (decoding costs the same), `--train-only g_a` then
    trains the encoder alone, and the exported weights code and decode."""
    from mlic.io.weights import load_model
    from mlic.models import build
    from mlic.train.loop import _initial_weights

    src_file = trained_tiny(folder, tmp_path / "one", steps=2)
    src = load_model(src_file).eval()
    enc = build("mlic-plus", analysis_channels=24, **TINY)
    assert enc.config.analysis_width == 24 and enc.config.transform_width == TINY["N"]
    assert build("mlic-plus", analysis_channels=TINY["N"], **TINY).config == src.config  # one spelling
    _initial_weights(enc, str(src_file))
    assert enc.g_a[0].conv1.weight.shape[0] == 24 and enc.g_s[-1][0].weight.shape[1] == TINY["N"]
    x = torch.rand(1, 3, 64, 96)
    enc.eval()
    with torch.no_grad():
        a, b = src(x), enc(x)
    assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-5)
    with pytest.raises(ValueError):
        build("mlic-plus", analysis_channels=-1, **TINY)

    weights = train_tiny_cli(folder, tmp_path / "enc", src_file, "--set", "analysis_channels=24", "--train-only", "g_a")
    trained = load_model(weights)
    assert trained.config.analysis_width == 24
    assert all(torch.equal(p, q) for p, q in zip(trained.g_s.state_dict().values(), src.g_s.state_dict().values()))
    img = next(folder.glob("*.png"))
    assert main(["compress", str(img), "-o", str(tmp_path / "e.mlic"), "--weights", str(weights), "--verify"]) == 0
