"""Faults while writing and reading: disk full, file-size limit, read-only output folder,
SIGINT during a batch, missing / corrupted / hostile weights. Clear one-line errors, no
partial outputs, inputs untouched."""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlic.cli.main import main


def run(*args) -> int:
    return main([str(a) for a in args])


def photo(path: Path, h=96, w=128, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(xx / 7 + seed), 128 + 100 * np.cos(yy / 5), (xx + yy) % 256], axis=2)
    Image.fromarray(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)).save(path)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mlic: error: ") and "Traceback" not in err, err
    return err


def test_disk_full_while_writing(tmp_path, weights, monkeypatch, capsys):
    import mlic.io.files as files_io

    src = photo(tmp_path / "p.png")
    before = digest(src)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files_io.os, "fsync", full)
    capsys.readouterr()
    assert run("compress", src, "--weights", weights) == 2
    assert "No space left on device" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]  # no output, no temporary file
    assert digest(src) == before


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlic.cli.main", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)  # fmt: skip


def test_file_size_limit_in_a_real_process(tmp_path, weights):
    src = photo(tmp_path / "p.png", 256, 256)
    mlic_file = tmp_path / "ok.mlic"
    assert _cli("compress", src, "--weights", weights, "-o", mlic_file).returncode == 0
    before = digest(src), digest(mlic_file)
    # compress and decompress with the OS refusing writes beyond 200 bytes
    for args in (["compress", src, "-o", tmp_path / "p2.mlic"], ["decompress", mlic_file, "-o", tmp_path / "out.png"]):
        proc = _cli(*args, "--weights", weights, preexec_fn=_limit_file_size(200))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("mlic: error: cannot write") and proc.stderr.count("\n") == 1, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.mlic", "p.png"]
    assert (digest(src), digest(mlic_file)) == before


def test_read_only_output_folder(tmp_path, weights):
    src = photo(tmp_path / "p.png")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    prefix: list[str] = []
    if os.geteuid() == 0:  # root ignores permissions: drop the capability that lets it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without util-linux setpriv to drop CAP_DAC_OVERRIDE")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]
    proc = subprocess.run([*prefix, sys.executable, "-m", "mlic.cli.main", "compress", str(src), "--weights",
                           str(weights), "-o", str(ro / "p.mlic")], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("mlic: error: cannot write in") and "Permission denied" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert list(ro.iterdir()) == []


def test_sigint_during_a_batch_leaves_only_complete_outputs(tmp_path, weights):
    inputs = [photo(tmp_path / f"in{i:02d}.png", 320, 320, seed=i) for i in range(30)]
    before = [digest(p) for p in inputs]
    out = tmp_path / "out"
    out.mkdir()
    # A shell's background job (`make test &`) starts with SIGINT ignored, an ignored signal stays
    # ignored across exec, and Python then raises no KeyboardInterrupt: the child would finish
    # the batch and exit 0. A handled signal is reset to the default by exec, so hold one here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "mlic.cli.main", "compress", *map(str, inputs), "-o", str(out),
                                 "--weights", str(weights)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.mlic"))) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "mlic: interrupted"
    done = sorted(out.iterdir())
    assert 2 <= len(done) < len(inputs)  # stopped part-way
    assert all(p.suffix == ".mlic" for p in done)  # no temporary files left behind
    decoded = tmp_path / "decoded"
    decoded.mkdir()
    for p in done:  # every output that exists is complete and decodes
        assert run("decompress", p, "-o", decoded / (p.stem + ".png"), "--weights", weights) == 0
    assert [digest(p) for p in inputs] == before


def test_missing_corrupted_and_hostile_weights(tmp_path, weights, capsys):
    src = photo(tmp_path / "p.png")
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes(weights.read_bytes()[:5000])
    flipped = tmp_path / "flip.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-100] ^= 0x01
    flipped.write_bytes(bytes(raw))
    marker = tmp_path / "pwned"

    class Exploit:  # unpickling this would create the marker file
        def __reduce__(self):
            return (open, (str(marker), "w"))

    hostile = tmp_path / "hostile.safetensors"
    hostile.write_bytes(pickle.dumps({"state_dict": Exploit()}))
    hostile_pt = tmp_path / "hostile.pth.tar"
    hostile_pt.write_bytes(pickle.dumps({"state_dict": Exploit()}))
    capsys.readouterr()
    for w, words in ((tmp_path / "missing.safetensors", "no such weights file"), (truncated, "not a readable"),
                     (flipped, "corrupted"), (hostile, "not a readable")):  # fmt: skip
        assert run("compress", src, "--weights", w, "--force") == 2
        assert words in one_line_error(capsys), w
    assert run("convert-official", hostile_pt, "-o", tmp_path / "conv.safetensors") == 2
    one_line_error(capsys)
    assert not marker.exists()  # nothing was unpickled
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".mlic", ".png")) == ["p.png"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_or_folder_given_as_an_input_file_is_refused_without_blocking(tmp_path, weights, capsys):
    """Opening a named pipe with no writer blocks forever; the check must come before any open.
    SIGALRM turns a regression into a failure instead of a hung suite."""
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    mlic_pipe = tmp_path / "pipe.mlic"
    os.mkfifo(mlic_pipe)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    src = photo(tmp_path / "p.png")

    def hung(signum, frame):
        raise TimeoutError("blocked on a named pipe")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        capsys.readouterr()
        for args, words in (
            (("compress", pipe, "--weights", weights, "-o", tmp_path / "a.mlic"), "not a regular file"),
            (("compress", folder, "--weights", weights, "-o", tmp_path / "b.mlic"), "is a folder"),
            (("compress", src, "--weights", pipe, "-o", tmp_path / "c.mlic"), "not a regular file"),
            (("decompress", mlic_pipe, "-o", tmp_path / "d.png"), "not a regular file"),
            (("info", mlic_pipe), "not a regular file"),
            (("eval", pipe, "--weights", weights, "--quality", "3"), "not a regular file"),
            (("bd-rate", pipe, pipe), "not a regular file"),
            (("export", pipe, "-o", tmp_path / "e.safetensors"), "not a regular file"),
            (("compress", tmp_path / "missing.png", "--weights", weights), "no such file"),
        ):
            assert run(*args) == 2, args
            assert words in one_line_error(capsys), args
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.png", "p.png", "pipe.mlic", "pipe.png"]
