"""MLIC, MLIC+ and MLIC++: parameter counts, shapes, exact round trips, rate agreement."""

from __future__ import annotations

import gc

import pytest
import torch

from conftest import FAMILY, TINY, kodak_crop
from mlic.context.channel import ChannelContext
from mlic.context.global_inter import GlobalInterContext
from mlic.context.global_intra import GlobalIntraContext
from mlic.context.local import CheckerboardWindowAttention, StackedCheckerboardConv
from mlic.context.parameters import EntropyParameters, LatentResidualPrediction
from mlic.models import build
from mlic.nn import GDN, IGDN, ResidualBlock, ResidualBlockUpsample, ResidualBlockWithStride
from mlic.nn.inference import make_channels_last_ready


def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    "name, overrides, expected",
    [
        ("mlic-plusplus", {}, 83_501_408),
        ("mlic-plusplus", {"legacy": True}, 116_716_928),
        ("mlic-plus", {}, 83_501_408),
        ("mlic-plus", {"legacy": True}, 116_716_928),
        ("mlic", {}, 41_885_452),
        ("mlic", {"legacy": True}, 45_587_500),
        ("mlic", {"M": 320, "slices": 10}, 78_769_484),
        ("mlic", {"M": 320, "slices": 10, "legacy": True}, 111_985_004),
    ],
)
def test_default_parameter_counts_match_the_spec(name, overrides, expected):
    model = build(name, **overrides)
    assert count(model) == expected
    del model
    gc.collect()


def test_unit_module_checksums():
    assert count(ResidualBlockWithStride(3, 192)) == 375_168
    assert count(ResidualBlockWithStride(192, 192)) == 738_048
    assert count(ResidualBlock(192, 192)) == 663_936
    assert count(ResidualBlock(320, 320)) == 1_843_840
    assert count(ResidualBlock(320, 192)) == 946_752
    assert count(ResidualBlockUpsample(320, 192)) == 4_794_240
    assert count(ResidualBlockUpsample(192, 192)) == 3_024_768
    assert [count(ChannelContext(32 * i, 128)) for i in (1, 5, 9)] == [424_384, 645_568, 866_752]
    assert [count(GlobalInterContext(32 * i, 32)) for i in (1, 5, 9)] == [109_184, 494_336, 977_792]
    assert count(GlobalIntraContext(32)) == 73_248
    assert count(CheckerboardWindowAttention(32)) == 75_522
    assert count(StackedCheckerboardConv(32)) == 102_528
    assert [count(EntropyParameters(w, 32)) for w in (384, 448, 512, 640, 704, 832, 960)] == [
        246_528, 267_008, 287_488, 328_448, 348_928, 389_888, 430_848,
    ]  # fmt: skip
    assert [count(LatentResidualPrediction(320 + 32 * (i + 1), 32)) for i in (0, 9)] == [1_004_928, 1_585_536]
    legacy = [count(LatentResidualPrediction(320 + 32 * (i + 1), 32, legacy=True)) for i in (0, 9)]
    assert legacy == [1_558_112, 4_897_040]


@pytest.mark.parametrize("name", FAMILY)
def test_shapes_for_a_256_input(name):
    model = build(name, **TINY).eval()
    x = torch.rand(2, 3, 256, 256)
    y = model.g_a(x)
    z = model.h_a(y)
    assert y.shape == (2, 32, 16, 16) and z.shape == (2, 16, 4, 4)
    assert model.h_s(z).shape == (2, 64, 16, 16)
    out = model(x)
    assert out["x_hat"].shape == x.shape
    assert out["likelihoods"]["y"].shape == y.shape
    assert out["likelihoods"]["z"].shape == z.shape


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_inference_blocks_write_in_place_with_the_same_bits(layout):
    """Without autograd the blocks and GDN overwrite their own temporaries and convolve with
    channels-last copies of their weights (mlic.nn.inference): the same values as the ordinary
    path to the bit, and the input untouched."""
    torch.manual_seed(3)
    cases = [(ResidualBlockWithStride(16, 24), 16), (ResidualBlock(24, 24), 24), (ResidualBlock(24, 16), 24),
             (ResidualBlockUpsample(16, 8), 16), (GDN(16), 16), (IGDN(16), 16)]  # fmt: skip
    for block, cin in cases:
        make_channels_last_ready(block)  # as in g_a / g_s: cached channels-last weights too
        with torch.no_grad():  # trained-looking weights: GDN away from its identity start
            for p in block.parameters():
                p.add_(0.05 * torch.randn_like(p))
        x = torch.randn(1, cin, 12, 20).contiguous(memory_format=layout)
        before = x.clone()
        reference = block(x).detach()  # autograd on: the out-of-place path
        with torch.no_grad():
            fast = block(x)
        assert torch.equal(fast, reference), type(block).__name__
        assert torch.equal(x, before), f"{type(block).__name__} wrote into its input"


def test_channels_last_weight_cache_follows_the_weight_and_is_never_saved():
    conv = make_channels_last_ready(torch.nn.Conv2d(8, 8, 3, padding=1))
    keys = set(conv.state_dict())
    x = torch.randn(1, 8, 6, 10).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        conv(x)
        assert "_channels_last_weight" in conv.__dict__ and set(conv.state_dict()) == keys
        conv.weight.mul_(2)  # an in-place change (an optimiser step): the copy must follow
        assert torch.equal(conv(x), torch.nn.functional.conv2d(x, conv.weight, conv.bias, padding=1))
    loss = conv(x.contiguous()).square().mean()  # training after inference: the ordinary path
    loss.backward()
    assert conv.weight.grad is not None and conv.weight.is_contiguous()


def test_unknown_model_and_bad_config_are_refused():
    with pytest.raises(ValueError, match="unknown model"):
        build("mlic-ultra")
    with pytest.raises(ValueError):
        build("mlic", M=30, slices=4)


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("size", [(1, 1), (17, 9), (64, 64), (100, 130)])
def test_exact_round_trip_at_odd_sizes(name, size):
    model = build(name, **TINY).eval()
    model.update()
    x = torch.rand(2, 3, *size)
    enc = model.compress(x)
    assert len(enc["strings"][0]) == 2 and len(enc["strings"][1]) == 2  # one y and one z string per image
    dec = model.decompress(enc["strings"], enc["shape"], enc["image_size"])
    assert torch.equal(dec["y_hat"], enc["y_hat"])  # bit-identical latent
    assert dec["x_hat"].shape == x.shape
    with torch.no_grad():
        fwd = model(x)
    # the eval forward (float32) is what a float32 probability path codes (format versions 1-2),
    # and, to float64 rounding, what the default float64 path (version 3) codes
    enc32 = model.compress(x, probability_dtype=torch.float32)
    assert torch.equal(fwd["y_hat"], enc32["y_hat"])
    torch.testing.assert_close(enc["y_hat"].float(), fwd["y_hat"], rtol=0, atol=1e-5)
    torch.testing.assert_close(dec["x_hat"], fwd["x_hat"], rtol=0, atol=1e-5)


def _calibrated(name: str, x: torch.Tensor, seed: int = 0):
    """A tiny random model whose predicted scales fit its latents (std 4), so rates are meaningful."""
    torch.manual_seed(seed)
    model = build(name, **TINY).eval()
    with torch.no_grad():
        k = 4.0 / model.g_a(x).std()
        model.g_a[-1].weight.mul_(k)
        model.g_a[-1].bias.mul_(k)
        c = model.slice_channels
        for ep in [*model.entropy_parameters_anchor, *model.entropy_parameters_nonanchor]:
            last = ep.fusion[-1]
            last.weight.mul_(0.01)
            last.bias[:c] = 4.0
            last.bias[c:] = 0.0
    model.update(force=True)
    return model


@pytest.mark.parametrize("name", FAMILY)
def test_coded_size_agrees_with_eval_likelihoods(name):
    x = kodak_crop(h=256, w=256)
    model = _calibrated(name, x)
    with torch.no_grad():
        out = model(x)
    estimated = sum((-torch.log2(l)).sum().item() for l in out["likelihoods"].values())
    enc = model.compress(x)
    coded = 8 * sum(len(s) for strings in enc["strings"] for s in strings)
    assert estimated > 20_000  # the latent really carries information
    assert abs(coded - estimated) / estimated < 0.01, (coded, estimated)
    dec = model.decompress(enc["strings"], enc["shape"], enc["image_size"])
    assert torch.equal(dec["y_hat"], enc["y_hat"])


@pytest.mark.parametrize("name", FAMILY)
def test_training_forward_gives_gradients_to_every_trained_parameter(name):
    model = build(name, **TINY).train()
    with torch.no_grad():  # random init makes |z| < 0.5, so z_hat = 0 and h_s's first conv gets no gradient
        model.h_a[-1].weight.mul_(50)
    out = model(torch.rand(2, 3, 64, 64))
    bpp = sum((-torch.log2(l)).sum() for l in out["likelihoods"].values()) / (2 * 64 * 64)
    (bpp + ((out["x_hat"] - 0.5) ** 2).mean()).backward()
    missing = [
        n for n, p in model.named_parameters()
        if not n.endswith("quantiles") and (p.grad is None or p.grad.abs().sum() == 0)
    ]  # fmt: skip
    assert not missing, missing
    aux = model.aux_loss()
    aux.backward()
    assert model.entropy_bottleneck.quantiles.grad.abs().sum() > 0


def test_model_is_stateless_across_sizes():
    model = build("mlic-plus", **TINY).eval()
    model.update()
    x_small, x_big = torch.rand(1, 3, 64, 128), torch.rand(1, 3, 128, 64)
    with torch.no_grad():
        first = model(x_small)["y_hat"]
        model(x_big)
        again = model(x_small)["y_hat"]
    assert torch.equal(first, again)
    assert not any(isinstance(v, torch.Tensor) for m in model.modules() for v in vars(m).values())


def test_transform_precision_changes_only_the_picture_not_the_stream_contract():
    model = build("mlic-plusplus", **TINY).eval()
    model.update()
    x = kodak_crop(h=64, w=128)
    results = {}
    for precision in ("fp32", "bf16"):
        model.transform_precision = precision
        enc = model.compress(x)
        dec = model.decompress(enc["strings"], enc["shape"], enc["image_size"])
        assert torch.equal(dec["y_hat"], enc["y_hat"])
        results[precision] = (enc, dec)
    # a bf16-encoded stream decodes with fp32 transforms too: only g_a/g_s precision differs
    enc = results["bf16"][0]
    model.transform_precision = "fp32"
    again = model.decompress(enc["strings"], enc["shape"], enc["image_size"])
    assert torch.equal(again["y_hat"], enc["y_hat"])
    mse = torch.mean((again["x_hat"] - results["bf16"][1]["x_hat"]) ** 2).item()
    assert mse < 1e-5
    model.transform_precision = "fp16"
    with pytest.raises(ValueError):
        model.compress(x)


@pytest.mark.parametrize("name", FAMILY)
def test_probability_path_is_thread_count_invariant(name):
    model = build(name, **TINY).eval()
    model.update()
    x = kodak_crop(h=128, w=192)
    threads = torch.get_num_threads()
    try:
        for enc_threads, dec_threads in ((1, 2), (2, 1)):
            torch.set_num_threads(enc_threads)
            enc = model.compress(x, check_group=1)
            torch.set_num_threads(dec_threads)
            dec = model.decompress(enc["strings"], enc["shape"], enc["image_size"], enc["checks"], 1)
            assert torch.equal(dec["y_hat"], enc["y_hat"])
    finally:
        torch.set_num_threads(threads)


def test_1x1_convolutions_on_the_probability_path_are_matmuls():
    from mlic.nn.invariant import MatmulConv1x1

    model = build("mlic-plusplus", **TINY)
    kinds = {type(m) for m in model.entropy_parameters_anchor.modules() if isinstance(m, torch.nn.Conv2d)}
    assert kinds == {MatmulConv1x1}
    conv = torch.nn.Conv2d(8, 5, 1)
    fast = MatmulConv1x1(8, 5, 1)
    fast.load_state_dict(conv.state_dict())
    x = torch.randn(2, 8, 6, 7)
    torch.testing.assert_close(fast(x), conv(x))


def test_channels_last_input_trains_safely():
    # torch 2.13 corrupts the heap in CPU convolution backward when input and weight memory
    # formats differ; the model must normalise its input (this used to abort the process)
    model = build("mlic", **TINY).train()
    x = torch.rand(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    for _ in range(3):
        out = model(x)
        sum(l.log().sum() for l in out["likelihoods"].values()).neg().backward()


def test_config_lists_from_json_or_cli_equal_tuples():
    from mlic.models import MLICConfig

    a = MLICConfig(channel_hidden=[64, 48], params_hidden=[1, 2, 3], lrp_hidden=[4, 5])
    assert a == MLICConfig(channel_hidden=(64, 48), params_hidden=(1, 2, 3), lrp_hidden=(4, 5))
    assert MLICConfig.from_dict(a.to_dict()) == a


@pytest.mark.parametrize("name", FAMILY)
def test_half_grid_entropy_parameters_match_the_reference_path_bit_for_bit(name):
    """Entropy parameters on the squeezed half (fast) against the full grid then masked (reference)."""
    from mlic.models.slices import QuantizeStep, run_slices

    model = build(name, **TINY).eval()
    model.update()
    saved = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for h, w in ((1, 1), (17, 9), (64, 96), (130, 100)):
                x = kodak_crop(h=h, w=w)
                with torch.no_grad():
                    y = model.analysis(x)
                    hyper = model.h_s(torch.round(model.h_a(y)))
                    results = []
                    for half in (True, False):
                        model.half_parameters = half
                        step = QuantizeStep(y, model.slice_channels, "round")
                        y_hat = run_slices(model, hyper, step)
                        results.append((y_hat, *step.parameters()))
                for fast, ref in zip(*results):
                    # float32 here: equal on the AMD EPYC (AVX512-BF16) machines this was written on,
                    # within float32 rounding on an Intel Xeon with AMX (its matrix-product kernels
                    # depend on the number of rows); the coded path below is float64 and must be exact
                    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6, msg=str((threads, h, w)))
                # and a stream written by one path decodes exactly on the other
                model.half_parameters = True
                enc = model.compress(x)
                model.half_parameters = False
                dec = model.decompress(enc["strings"], enc["shape"], enc["image_size"], checks=enc["checks"])
                # the same symbols (a wrong one moves y_hat by at least 1), and means equal within
                # float64 rounding: equal bit for bit on the earlier EPYCs, up to 8.3e-17 apart in some
                # values with 2 threads on an AMD EPYC of family 26 (Zen 5), whose kernels sum the
                # two grids' shapes in other orders
                torch.testing.assert_close(dec["y_hat"], enc["y_hat"], rtol=0, atol=1e-12, msg=str((threads, h, w)))
    finally:
        model.half_parameters = True
        torch.set_num_threads(saved)


def test_half_grid_entropy_parameters_at_full_width():
    """Default MLIC++ widths (where matrix-product kernels are chosen by size): still bit-exact."""
    from mlic.models.slices import QuantizeStep, run_slices

    model = build("mlic-plusplus").eval()
    with torch.no_grad():
        y = torch.randn(1, 320, 8, 12) * 3
        hyper = torch.randn(1, 640, 8, 12)
        outs = []
        for half in (True, False):
            model.half_parameters = half
            step = QuantizeStep(y, model.slice_channels, "round")
            outs.append((run_slices(model, hyper, step), *step.parameters()))
    for fast, ref in zip(*outs):
        assert torch.equal(fast, ref)
