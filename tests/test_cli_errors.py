"""Every verb turns bad values into one line on stderr and exit 1 (usage) or 2 (input),
never a traceback (the issue: "One-line errors everywhere")."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from conftest import TINY, kodak_rgb
from mlic.cli.main import main
from mlic.io import save_model
from mlic.models import build


@pytest.fixture(scope="module")
def files(tmp_path_factory, weights):
    d = tmp_path_factory.mktemp("bad")
    torch.manual_seed(1)
    other = d / "other-architecture.safetensors"
    save_model(build("mlic", **TINY), other)  # another family than `weights` (mlic-plus)
    image = d / "photo.png"
    Image.fromarray(kodak_rgb("kodim15.png", 64, 64)).save(image)
    assert main(["compress", str(image), "--weights", str(weights), "-o", str(d / "photo.mlic")]) == 0
    (d / "garbage.bin").write_bytes(b"\x00\x01 not anything mlic reads " * 10)
    (d / "garbage.json").write_text("{ not json")
    (d / "train").mkdir()
    for k in range(2):
        Image.fromarray(kodak_rgb("kodim05.png", 128, 128)[:, ::-1] if k else kodak_rgb("kodim05.png", 128, 128)).save(d / "train" / f"{k}.png")
    (d / "empty").mkdir()
    vr = d / "variable-rate.safetensors"
    save_model(build("mlic-plus", rate_lambdas=(0.0067, 0.013, 0.025), first_quality=3, **TINY), vr)
    return {"dir": d, "w": weights, "other": other, "img": image, "mlic": d / "photo.mlic", "vr": vr,
            "garbage": d / "garbage.bin", "json": d / "garbage.json", "train": d / "train", "empty": d / "empty"}  # fmt: skip


def _cases(f) -> list[tuple[list, int]]:
    d, w, img = f["dir"], f["w"], f["img"]
    out = ["-o", d / "never.mlic"]
    bare = ["train", f["train"], "--out", d / "run", "--steps", "1", "--quiet", "--set", "N=16", "--set", "M=32", "--set", "slices=4"]
    tr = [*bare, "--lambda", "0.01"]  # a tiny model, so that a refusal that does not happen costs little
    return [
        # compress
        (["compress", d / "missing.png", "--weights", w, *out], 2),
        (["compress", f["garbage"], "--weights", w, *out], 2),
        (["compress", img, "--weights", d / "missing.safetensors", *out], 2),
        (["compress", img, "--weights", f["garbage"], *out], 2),
        (["compress", img, "--weights", f["other"], "--model", "mlic-plus", *out], 1),
        (["compress", img, "--model", "no-such-model", *out], 2),
        (["compress", img, "--quality", "99", *out], 2),
        (["compress", img, "--weights", w, "--threads", "0", *out], 1),
        (["compress", img, "--weights", w, "--tile", "100", *out], 1),
        (["compress", img, "--weights", w, "--refine", "-1", *out], 1),
        (["compress", img, "--weights", w, "--refine-lambda", "-1", *out], 1),
        (["compress", img, "--weights", w, "--precision", "fp16", *out], 1),
        (["compress", img, "--quality", "nan", *out], 1),
        (["compress", img, "--quality", "4", "--target-bytes", "900", *out], 1),
        (["compress", img, "--target-bytes", "900", "--target-psnr", "30", *out], 1),
        (["compress", img, "--weights", w, "--target-bytes", "900", *out], 1),  # one-rate weights
        (["compress", img, "--weights", w, "--quality", "2.5", *out], 1),  # one-rate weights: a whole-number label
        (["compress", img, "--weights", f["vr"], "--quality", "6", *out], 1),  # outside 3-5
        (["compress", img, "--weights", f["vr"], "--target-bytes", "0", *out], 1),
        (["compress", img, "--weights", f["vr"], "--target-bpp", "-0.5", *out], 1),
        (["compress", img, "--weights", f["vr"], "--target-psnr", "inf", *out], 1),
        (["compress", img, "--weights", f["vr"], "--target-bytes", "5", *out], 2),  # below the smallest file
        (["compress", img, "--target-psnr", "99", *out], 2),  # above what the bundled weights reach
        # decompress
        (["decompress", d / "missing.mlic", "-o", d / "x.png"], 2),
        (["decompress", f["garbage"], "-o", d / "x.png"], 2),
        (["decompress", f["mlic"], "--weights", f["other"], "-o", d / "x.png"], 2),
        (["decompress", f["mlic"], "--weights", d / "missing.safetensors", "-o", d / "x.png"], 2),
        (["decompress", f["mlic"], "--weights", w, "--threads", "0", "-o", d / "x.png"], 1),
        # info, zoo
        (["info", d / "missing.mlic"], 2),
        (["info", f["garbage"]], 2),
        (["info", d], 2),
        (["zoo", "extra"], 1),
        # train: everything is checked before a step is taken
        ([*tr, "--set", "M=30"], 1),  # 30 channels do not split into 4 slices
        ([*tr, "--set", "no_such_field=1"], 1),
        ([*tr, "--set", "N=abc"], 1),
        ([*tr, "--set", "N"], 1),
        ([*tr, "--set", "slices=0"], 1),
        ([*tr, "--lambda", "-1"], 1),
        ([*tr, "--lambda", "0"], 1),
        ([*bare, "--quality", "9"], 1),
        ([*tr, "--quality", "4"], 1),  # both
        ([*bare], 1),  # neither
        ([*tr, "--steps", "0"], 1),
        ([*tr, "--batch", "0"], 1),
        ([*tr, "--crop", "abc"], 1),
        ([*tr, "--lr", "-1"], 1),
        ([*tr, "--lr-drops", "x:y"], 1),
        ([*tr, "--threads", "0"], 1),
        ([*tr, "--z-warmup", "-3"], 1),
        ([*tr, "--revive-z"], 1),  # nothing to revive without --init
        ([*bare, "--variable-rate", "5-3"], 1),
        ([*bare, "--variable-rate", "2-9"], 1),
        ([*bare, "--variable-rate", "x"], 1),
        ([*tr, "--variable-rate"], 1),  # and a lambda
        ([*tr, "--model", "no-such-model"], 1),
        ([*tr, "--precision", "fp16"], 1),
        (["train", d / "missing", "--out", d / "run", "--lambda", "0.01", "--steps", "1"], 2),
        (["train", f["empty"], "--out", d / "run", "--lambda", "0.01", "--steps", "1"], 2),
        ([*tr, "--init", d / "missing.safetensors"], 2),
        ([*tr, "--init", f["garbage"]], 2),
        ([*tr, "--init", f["other"]], 2),  # mlic weights for an mlic-plus run
        ([*tr, "--val", d / "missing"], 2),
        (["train", f["train"], "--out", d / "no-run-here", "--resume"], 2),
        # export, convert-official
        (["export", d / "missing.ckpt", "-o", d / "e.safetensors"], 2),
        (["export", f["garbage"], "-o", d / "e.safetensors"], 2),
        (["export", w, "-o", d / "e.safetensors"], 2),  # weights, not a checkpoint
        (["convert-official", d / "missing.pth.tar", "-o", d / "c.safetensors"], 2),
        (["convert-official", f["garbage"], "-o", d / "c.safetensors"], 2),
        # eval, bench, bd-rate, plot, report
        (["eval", img, "--weights", d / "missing.safetensors"], 2),
        (["eval", img, "--weights", f["garbage"]], 2),
        (["eval", img, "--weights", f["other"], "--model", "mlic-plus"], 1),
        (["eval", d / "missing.png", "--weights", w], 2),
        (["eval", img, "--quality", "99"], 2),
        (["eval", img, "--weights", w, "--threads", "0"], 1),
        (["eval", img, "--weights", w, "--precision", "fp16"], 1),
        (["eval", img, "--weights", w, "--quality", "3"], 1),  # one-rate weights
        (["eval", img, "--weights", f["vr"], "--quality", "2.5"], 1),  # outside 3-5
        (["eval", img, "--quality", "1.5"], 2),  # outside what is bundled
        (["bench", "no-such-codec", img], 1),
        (["bench", "jpeg", d / "missing.png"], 2),
        (["bench", "jpeg", img, "--values", "-5"], 1),
        (["bench", "jpeg", img, "--values", "500"], 1),
        (["bench", "jpeg2000", img, "--values", "0"], 1),
        (["bench", "webp", img, "--values", "nan"], 1),
        (["bd-rate", d / "missing.json", d / "missing2.json"], 2),
        (["bd-rate", f["json"], f["json"]], 2),
        (["plot", d / "missing.json", "-o", d / "p.png"], 2),
        (["plot", f["json"], "-o", d / "p.png"], 2),
        (["report", d / "missing.json", "-o", d / "report"], 2),
        (["report", f["json"], "-o", d / "report"], 2),
    ]


def test_every_verb_turns_bad_values_into_one_line(files, capsys):
    capsys.readouterr()
    failures = []
    for args, code in _cases(files):
        args = [str(a) for a in args]
        try:
            rc = main(args)
        except SystemExit as exc:  # argparse's own refusals (exit 1 here)
            rc = exc.code
        except Exception as exc:  # noqa: BLE001 - what the test is looking for
            rc = f"raised {type(exc).__name__}: {exc}"
        err = capsys.readouterr().err.strip().splitlines()
        if (files["dir"] / "run").exists():
            failures.append(f"mlic {' '.join(args)}: left a run folder behind")
            import shutil
            shutil.rmtree(files["dir"] / "run")
        last = err[-1] if err else ""
        one_line = len([line for line in err if line.startswith("mlic: error:")]) == 1 and last.startswith("mlic: error:")
        if rc != code or not one_line or any("Traceback" in line for line in err):
            failures.append(f"mlic {' '.join(a.replace(str(files['dir']), '…') for a in args)}: exit {rc} (want {code}), stderr {err[-3:]}")
    assert not failures, "\n".join(failures)
    assert not (files["dir"] / "never.mlic").exists() and not (files["dir"] / "run").exists()


def test_a_reader_that_goes_away_ends_the_output_silently(files):
    """`mlic info F | head -1`: the pipe's reader is gone before mlic writes; mlic stops with
    141 (as cat does) and says nothing, instead of "error: Broken pipe" or a traceback."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "mlic.cli.main", "info", str(files["mlic"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # the reader quits before anything is written
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141 and err == b""
