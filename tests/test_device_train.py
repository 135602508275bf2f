"""scripts/device-train on CPU: a shard from three photos, a timed leg, outputs within the device
tool's limits (at most 8 files back, each under 16 MiB), weights that code and decode exactly,
and a second leg resumed from the first one's checkpoint parts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import TINY, load_script, synthetic_photos

from mlic.cli.main import main
from mlic.io.weights import load_model, save_model
from mlic.models import build

ROOT = Path(__file__).resolve().parents[1]


def kit(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "device-train"), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


LEG = ["--minutes", "5", "--max-steps", "2", "--probe-steps", "3"]  # a few steps, however busy or slow the
# CPU: fixed minutes of 0.4 left no time to train once a tiny-model step took 8 s (AVX2-emulated beside a run)


def test_pack_run_resume_within_the_limits(tmp_path):
    (tmp_path / "photos").mkdir()
    photos = synthetic_photos(tmp_path / "photos", 3, 300, 400, seed=1, noise=8)
    shard = tmp_path / "shard"
    r = kit("pack", photos, shard, "--crops", "12", "--size", "128", "--max-mib", "1")
    assert r.returncode == 0, r.stderr
    assert len(list((shard / "crops").glob("*.png"))) == 12
    assert (shard / "manifest.tsv").read_text().count("\n") == 13 and (shard / "sources.tsv").exists()
    assert kit("pack", photos, shard).returncode != 0  # never into an existing shard

    init = tmp_path / "tiny.safetensors"
    save_model(build("mlic-plus", **TINY).eval(), init, metadata={"lambda": "0.013", "metric": "mse"})
    train_opts = ["--", "--crop", "64", "--batch", "2", "--warmup", "0", "--precision", "fp32", "--threads", "1"]
    out = tmp_path / "leg1"
    r = kit("run", shard, out, *LEG, "--init", init, *train_opts)
    assert r.returncode == 0, r.stderr + r.stdout
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all((out / f).stat().st_size < 16 << 20 for f in files)
    assert {"weights.safetensors", "log.csv", "summary.json", "checkpoint.part00"} <= set(files)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["device"] == "cpu" and 1 <= summary["steps"] <= summary["planned_steps"] <= 2
    assert summary["total_seconds"] < 5 * 60 + 30

    img = next(photos.glob("*.png"))
    weights = out / "weights.safetensors"
    assert main(["compress", str(img), "-o", str(tmp_path / "x.mlic"), "--weights", str(weights), "--verify"]) == 0
    assert main(["decompress", str(tmp_path / "x.mlic"), "-o", str(tmp_path / "x.png"), "--weights", str(weights)]) == 0

    out2 = tmp_path / "leg2"
    r = kit("run", shard, out2, *LEG, "--resume", out)
    assert r.returncode == 0, r.stderr + r.stdout
    assert json.loads((out2 / "summary.json").read_text())["steps"] > summary["steps"]
    r = kit("join", out2, "-o", tmp_path / "joined" / "last.ckpt")
    assert r.returncode == 0 and (tmp_path / "joined" / "last.ckpt").stat().st_size > 0


def test_init_weights_give_the_architecture_and_a_set_changes_one_field(tmp_path):
    """What `run --init W -- --set transform_channels=24` asks mlic train for: W's architecture
    with the transforms widened, at W's lambda."""
    kit_module = load_script(ROOT / "scripts" / "device-train")
    init = tmp_path / "tiny.safetensors"
    save_model(build("mlic-plus", **TINY).eval(), init, metadata={"lambda": "0.013", "metric": "mse"})
    from mlic.cli.main import build_parser, train_config

    extra = ["--set", "transform_channels=24"]
    argv = ["train", str(tmp_path), "--out", str(tmp_path / "r"), *kit_module.arch_args(str(init), extra),
            "--init", str(init), *extra]  # fmt: skip
    cfg = train_config(build_parser().parse_args(argv))
    assert cfg.lmbda == 0.013 and cfg.model_overrides["transform_channels"] == 24
    assert cfg.model_overrides["N"] == TINY["N"] and cfg.model_overrides["M"] == TINY["M"]


def test_batch_and_compile_choices_follow_the_measured_rates():
    """The largest batch whose doubling still paid (10 % more samples per second), stopping at the
    first failed or unpaid probe; compiling only when it buys 5 % more steps after its own cost."""
    kit_module = load_script(ROOT / "scripts" / "device-train")
    choose, pays = kit_module.choose_batch, kit_module.compile_pays

    def row(b, sps, ok=True):
        return {"batch": b, "ok": ok, "samples_per_second": sps, "seconds_per_step": b / sps if sps else None}

    assert choose([row(8, 100), row(16, 180), row(32, 190), row(64, 400)])["batch"] == 16  # 32 did not pay
    assert choose([row(8, 100), row(16, 0, ok=False)])["batch"] == 8  # e.g. out of memory
    assert choose([row(8, 100), row(16, 111), row(32, 130)])["batch"] == 32
    assert choose([row(8, 0, ok=False)]) is None

    eager = {"ok": True, "seconds_per_step": 0.10, "wall_s": 20.0}
    fast = {"ok": True, "seconds_per_step": 0.05, "wall_s": 80.0}  # twice the rate, 60 s of compiling
    assert pays(eager, fast, 400.0)  # 6,800 steps against 4,000
    assert not pays(eager, fast, 100.0)  # 800 against 1,000
    assert not pays(eager, {**fast, "seconds_per_step": 0.098}, 4000.0)  # 2 % faster does not pay
    assert not pays(eager, {"ok": False, "wall_s": 5.0}, 400.0)


def test_auto_batch_probes_doublings_in_their_own_processes(tmp_path):
    """`run --batch auto` on CPU: probes batch 2, 4, ... each in a process of its own, trains at the
    batch choose_batch picks from them and records them; a probe that fails says why and does not
    end the leg's process."""
    kit_module = load_script(ROOT / "scripts" / "device-train")
    (tmp_path / "photos").mkdir()
    photos = synthetic_photos(tmp_path / "photos", 3, 200, 260, seed=2, noise=8)
    shard = tmp_path / "shard"
    assert kit("pack", photos, shard, "--crops", "8", "--size", "64", "--max-mib", "1").returncode == 0
    init = tmp_path / "tiny.safetensors"
    save_model(build("mlic-plus", **TINY).eval(), init, metadata={"lambda": "0.013", "metric": "mse"})

    bad = kit_module.probe(shard, tmp_path / "bad", ["--init", str(init), "--lambda", "0.01", "--set", "N=7"], 2, 60)
    assert not bad["ok"] and bad["why"].startswith("mlic: error") and not (tmp_path / "bad").exists()

    out = tmp_path / "leg"
    r = kit("run", shard, out, *LEG, "--init", init, "--batch", "auto", "--",
            "--crop", "64", "--batch", "2", "--warmup", "0", "--precision", "fp32", "--threads", "1")
    assert r.returncode == 0, r.stderr + r.stdout
    summary = json.loads((out / "summary.json").read_text())
    probes = summary["probes"]
    assert [p["batch"] for p in probes] == [2 * 2**k for k in range(len(probes))] and probes[0]["ok"]
    assert not any(p["compile"] for p in probes)  # compile auto probes on CUDA only
    assert summary["batch"] == kit_module.choose_batch(probes)["batch"] and summary["compile"] is False
    assert summary["steps"] >= 1 and len(list(out.iterdir())) <= 8


def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys):
    """Bad options, a missing or foreign weights file, missing or damaged checkpoint parts: a
    one-line error, a non-zero exit, no traceback, and no shard, leg or work folder left behind."""
    kit_module = load_script(ROOT / "scripts" / "device-train")
    (tmp_path / "photos").mkdir()
    photos = synthetic_photos(tmp_path / "photos", 1, 200, 260, seed=3, noise=8)
    shard, out = tmp_path / "shard", tmp_path / "leg"
    init = tmp_path / "tiny.safetensors"
    save_model(build("mlic-plus", **TINY).eval(), init, metadata={"lambda": "0.013", "metric": "mse"})
    (tmp_path / "foreign.safetensors").write_bytes(b"not weights")
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "checkpoint.part00").write_bytes(b"\x80\x02 not a checkpoint")
    run = ["run", str(photos), str(out), "--minutes", "1"]  # a folder of photos serves as a shard
    cases = [
        (["pack", str(photos), str(shard), "--crops", "0"], "--crops"),
        (["pack", str(photos), str(shard), "--size", "100"], "--size"),
        (["pack", str(photos), str(shard), "--max-mib", "nan"], "--max-mib"),
        (["pack", str(photos), str(shard), "--size", "64", "--max-mib", "0.0001"], "not one 64x64 crop fits"),
        (["pack", str(tmp_path / "none"), str(shard)], "not a folder"),
        (["run", str(photos), str(out), "--minutes", "0", "--init", str(init)], "--minutes"),
        (["run", str(photos), str(out), "--minutes", "inf", "--init", str(init)], "--minutes"),
        ([*run, "--init", str(init), "--probe-steps", "2"], "--probe-steps"),
        ([*run, "--init", str(init), "--max-steps", "0"], "--max-steps"),
        ([*run, "--init", str(init), "--batch", "0"], "--batch"),
        ([*run, "--init", str(init), "--resume", str(tmp_path / "parts")], "not both"),
        (["run", str(tmp_path / "none"), str(out), "--minutes", "1", "--init", str(init)], "not a folder"),
        ([*run, "--init", str(tmp_path / "missing.safetensors")], "no such weights file"),
        ([*run, "--init", str(tmp_path / "foreign.safetensors")], "foreign.safetensors"),
        ([*run, "--resume", str(tmp_path / "none")], "no checkpoint.part*"),
        ([*run, "--resume", str(tmp_path / "parts")], "do not form a checkpoint"),
        ([*run, "--resume", str(tmp_path / "parts"), "--batch", "4"], "keeps its run's batch"),
        (["join", str(tmp_path / "parts"), "-o", str(tmp_path / "j" / "last.ckpt")], "do not form a checkpoint"),
        (["join", str(tmp_path / "parts"), "-o", str(init)], "exists"),  # never over an existing file
    ]
    given = {p.name for p in tmp_path.iterdir()}  # photos, the two weights files, parts
    for argv, says in cases:
        try:
            rc = kit_module.main(argv)
        except SystemExit as e:  # argparse's errors, and the script's own SystemExit("...") lines
            rc = e.code if isinstance(e.code, int) else (print(e.code, file=sys.stderr) or 1)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc not in (0, None), argv
        assert err and err[-1].startswith("device-train") and says in err[-1], (argv, err)
        assert "Traceback" not in "\n".join(err), (argv, err)
        leftovers = {p.name for p in tmp_path.iterdir()} - given
        assert not leftovers, (argv, leftovers)
    assert load_model(init) is not None  # the file join was pointed at is intact
