"""The private torch APIs mlic relies on (all in mlic/_torch_internals.py) still behave as it
needs: a torch upgrade that breaks one fails here, by name, not deep inside a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY
from mlic import _torch_internals as ti
from mlic.io.weights import model_digest
from mlic.models import build


def test_version_key_sees_in_place_changes_and_keeps_caches_honest():
    t = torch.zeros(4)
    key = ti.version_key(t)
    assert ti.version_key(t) == key  # unchanged tensor: the cache hits
    t.add_(1)
    assert ti.version_key(t) != key  # in-place change: the cache misses
    model = build("mlic-plus", **TINY).eval()
    before = model_digest(model)
    with torch.no_grad():
        model.g_a[0].conv1.weight[0, 0, 0, 0] += 1  # an in-place edit of one weight
    assert model_digest(model) != before
    model.update(force=True)
    tables = model.gaussian_conditional.coder_tables()
    assert model.gaussian_conditional.coder_tables() is tables
    with torch.no_grad():
        model.gaussian_conditional.cdf[0, 1] += 1
    assert model.gaussian_conditional.coder_tables() is not tables


def test_onednn_bf16_probe_is_still_there():
    """Without it, mlic would take every CPU for one without bf16 kernels (fp32: correct but
    2-3x slower where bf16 is native)."""
    assert callable(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None))
    assert isinstance(ti.cpu_has_native_bf16(), bool)


def test_gelu_in_place_gives_the_bits_of_gelu():
    x = torch.randn(3, 8, 5, 7).contiguous(memory_format=torch.channels_last)
    expected = torch.nn.functional.gelu(x)
    y = x.clone()
    assert ti.gelu_(y) is y and torch.equal(y, expected)


def test_ddp_ignore_marks_the_parameters():
    """What DistributedDataParallel reads to skip parameters (the two-process test in
    test_train.py runs the real thing)."""
    model = build("mlic-plus", **TINY)
    ti.ddp_ignore(model, ["entropy_bottleneck.quantiles"])
    assert set(getattr(model, "_ddp_params_and_buffers_to_ignore")) == {"entropy_bottleneck.quantiles"}


_PROBE = """
import json, torch
a = torch.ones(256, 256)
(a @ a).sum()
from mlic._torch_internals import cpu_has_native_bf16
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "bf16": cpu_has_native_bf16()}))
"""


def test_avx2_emulation_restricts_all_three_kernel_libraries():
    """The AVX2-only emulation the cross-CPU tests and benchmarks use: ATen reports AVX2, oneDNN
    has no bf16 kernels, and MKL (matrix products) announces an AVX2 code path, not AVX-512
    (MKL_VERBOSE prints the instruction set it dispatched to)."""
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("not an x86-64 CPU with AVX2")
    env = dict(os.environ, MKL_VERBOSE="1", OMP_NUM_THREADS="1", **ti.AVX2_ONLY_ENV)
    r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout.strip().splitlines()[-1])
    assert facts == {"capability": "AVX2", "bf16": False}
    banner = [line for line in r.stdout.splitlines() if line.startswith("MKL_VERBOSE") and "Product build" in line]
    if not torch.backends.mkl.is_available() or not banner:
        pytest.skip("this torch does not use MKL (or MKL printed no banner): nothing more to restrict")
    if "AVX" not in banner[0]:  # an AMD EPYC of family 26 (Zen 5): MKL names no code path at all
        pytest.skip(f"MKL names no instruction set on this CPU: {banner[0]}")
    assert "AVX-512" not in banner[0] and "AVX2" in banner[0], banner[0]


def test_the_probability_path_keeps_its_bits_across_thread_counts_with_avx2_kernels():
    """MKL's AVX2 matrix products (an AVX2-only CPU) gave other bits with 1 and 2 threads until
    ``import mlic`` asked for strict reproducibility (MKL_CBWR=AUTO,STRICT, mlic/__init__.py):
    the thread-count and half-grid exactness tests, rerun in a fresh process with AVX2 kernels
    only (without the setting, 7 of them failed there)."""
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("not an x86-64 CPU with AVX2")
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    env.update(ti.AVX2_ONLY_ENV)
    tests = str(Path(__file__).resolve().parent / "test_models.py")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests, "-k",
                        "thread_count_invariant or half_grid"], capture_output=True, text=True, env=env)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:]
    assert "passed" in r.stdout and "failed" not in r.stdout


def test_import_mlic_asks_mkl_for_thread_independent_results_and_keeps_a_users_choice():
    probe = "import os, mlic; print(os.environ.get('MKL_CBWR'))"
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert r.stdout.strip() == "AUTO,STRICT", r.stderr
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=dict(env, MKL_CBWR="AVX2"))
    assert r.stdout.strip() == "AVX2", r.stderr
