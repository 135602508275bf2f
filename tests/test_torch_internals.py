"""The private torch APIs mlic relies on (all in mlic/_torch_internals.py) still behave as it
needs: a torch upgrade that breaks one fails here, by name, not deep inside a run."""

from __future__ import annotations

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


def test_ddp_ignore_marks_the_parameters():
    """What DistributedDataParallel reads to skip parameters (the two-process test in
    test_train.py runs the real thing)."""
    model = build("mlic-plus", **TINY)
    ti.ddp_ignore(model, ["entropy_bottleneck.quantiles"])
    assert set(getattr(model, "_ddp_params_and_buffers_to_ignore")) == {"entropy_bottleneck.quantiles"}
