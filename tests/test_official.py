"""Import of official MLIC++ checkpoints, tested on synthetic state dicts built from the key table."""

from __future__ import annotations

import ast

import pytest
import torch

from conftest import data_file
from mlic.cli.main import main
from mlic.io import load_model
from mlic.models import build
from mlic.official import CheckpointError, convert_mlicpp_state_dict, model_for_official

def official_state_dict() -> dict[str, torch.Tensor]:
    sd = {}
    for line in data_file("mlicpp_official_keys.tsv").read_text().splitlines()[1:]:
        key, shape, dtype = line.split("\t")
        shape = tuple(ast.literal_eval(shape))
        sd[key] = torch.randn(shape) if dtype == "float32" else torch.zeros(shape, dtype=getattr(torch, dtype))
    return sd


_TO_OFFICIAL = [("g_a.", "g_a.analysis_transform."), ("g_s.", "g_s.synthesis_transform."),
                ("h_a.", "h_a.reduction."), ("h_s.", "h_s.increase.")]  # fmt: skip


def to_official_names(ours: dict[str, torch.Tensor], old_bottleneck: bool) -> dict[str, torch.Tensor]:
    """Our state dict under official names (CompressAI 1.2.0b3 bottleneck names if asked)."""
    out = {}
    for key, value in ours.items():
        for a, b in _TO_OFFICIAL:
            if key.startswith(a):
                key = b + key[len(a):]
        if key.startswith("channel_context."):
            key = key.replace(".fusion.", ".fushion.")
        if old_bottleneck and key.startswith("entropy_bottleneck."):
            for a, b in (("matrices.", "_matrix"), ("biases.", "_bias"), ("factors.", "_factor")):
                key = key.replace(a, b)
        out[key] = value
    return out


def test_official_state_dict_loads_strictly_and_keeps_values():
    sd = official_state_dict()
    converted = convert_mlicpp_state_dict({"epoch": 3, "state_dict": sd})
    model = model_for_official(sd)
    assert not model.config.legacy and model.config.M == 320 and model.config.slices == 10
    model.load_state_dict(converted, strict=True)
    assert torch.equal(model.g_a[0].conv1.weight, sd["g_a.analysis_transform.0.conv1.weight"])
    assert torch.equal(model.channel_context[3].fusion[2].weight, sd["channel_context.3.fushion.2.weight"])
    assert torch.equal(model.entropy_bottleneck.matrices[1], sd["entropy_bottleneck.matrices.1"])
    assert torch.equal(model.h_s[6][0].weight, sd["h_s.increase.6.0.weight"])


def test_legacy_checkpoint_with_old_bottleneck_names_and_module_prefix():
    legacy = build("mlic-plusplus", legacy=True)
    ours = {k: v.detach() for k, v in legacy.named_parameters()}
    official = {"module." + k: v for k, v in to_official_names(ours, old_bottleneck=True).items()}
    assert "module.entropy_bottleneck._matrix0" in official
    model = model_for_official(official)
    assert model.config.legacy
    model.load_state_dict(convert_mlicpp_state_dict(official), strict=True)
    for (k, a), b in zip(legacy.named_parameters(), model.parameters()):
        assert torch.equal(a, b), k


def test_broken_state_dicts_are_refused():
    sd = official_state_dict()
    missing = dict(sd)
    del missing["lrp_nonanchor.4.lrp_transform.2.weight"]
    with pytest.raises(CheckpointError, match="lacks"):
        convert_mlicpp_state_dict(missing)
    wrong = dict(sd)
    wrong["local_context.0.proj.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError, match="shape"):
        convert_mlicpp_state_dict(wrong)
    extra = dict(sd)
    extra["mystery.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="unexpected"):
        convert_mlicpp_state_dict(extra)
    with pytest.raises(CheckpointError, match="not an MLIC"):
        convert_mlicpp_state_dict({"state_dict": {"foo": torch.zeros(1)}})


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_convert_official_cli(tmp_path, capsys):
    ckpt = tmp_path / "mlicpp_mse_q5.pth.tar"
    torch.save({"epoch": 1, "state_dict": official_state_dict(), "loss": 0.5, "optimizer": {}}, ckpt)
    out = tmp_path / "mlicpp.safetensors"
    assert main(["convert-official", str(ckpt), "-o", str(out)]) == 0
    assert "83,501,408 parameters" in capsys.readouterr().out
    model = load_model(out)
    assert model.config.name == "mlic-plusplus" and model.gaussian_conditional.has_tables
    # refuses to overwrite, and never unpickles code
    assert main(["convert-official", str(ckpt), "-o", str(out)]) == 2
    evil = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {"x": _Evil()}}, evil)
    assert main(["convert-official", str(evil), "-o", str(tmp_path / "e.safetensors")]) == 2
    err = capsys.readouterr()
    assert "pickled code ran" not in err.out and err.err.count("\n") == 2
