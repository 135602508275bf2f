"""Entropy models: likelihoods, tables, persistence, gradients."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from scipy.special import ndtr

from mlic.entropy import EntropyBottleneck, GaussianConditional, quantize, ste_round
from mlic.coding.tables import TOTAL, quantize_pmf


def _randomised_bottleneck(channels=4, seed=0):
    torch.manual_seed(seed)
    eb = EntropyBottleneck(channels)
    with torch.no_grad():
        for p in list(eb.matrices) + list(eb.biases) + list(eb.factors):
            p.add_(torch.randn_like(p) * 0.5)
    return eb


def test_quantize_pmf_is_a_valid_16_bit_cdf():
    cdf = quantize_pmf(np.array([1e-12, 0.999, 1e-7]), 1e-15)
    counts = np.diff(cdf)
    assert cdf[0] == 0 and cdf[-1] == TOTAL
    assert (counts >= 1).all()


def test_gaussian_tables_cover_every_symbol_with_positive_probability():
    gc = GaussianConditional()
    assert gc.update() and not gc.update()
    assert gc.cdf.shape[0] == 64
    for t in range(64):
        n = int(gc.cdf_length[t])
        row = gc.cdf[t, :n].numpy()
        assert row[0] == 0 and row[-1] == TOTAL and (np.diff(row) >= 1).all()
    np.testing.assert_allclose(gc.scale_table[[0, -1]].numpy(), [0.11, 256.0], rtol=1e-6)


def test_gaussian_likelihood_matches_closed_form():
    gc = GaussianConditional()
    v = torch.tensor([0.0, 1.0, -3.0, 10.0, 0.3])
    mu = torch.tensor([0.2, 0.0, -1.0, 0.0, 0.3])
    s = torch.tensor([1.0, 0.05, 2.0, 0.5, 7.0])
    got = gc.likelihood(v, s, mu).double().numpy()
    sd = np.maximum(s.double().numpy(), 0.11)
    d = (v - mu).double().numpy()
    want = np.maximum(ndtr((d + 0.5) / sd) - ndtr((d - 0.5) / sd), 1e-9)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)


def test_build_indexes_picks_first_table_scale_not_below_sigma():
    gc = GaussianConditional()
    table = gc.scale_table
    s = torch.cat([table[:3], table[:3] + 1e-4, torch.tensor([0.01, 1e6])])
    idx = gc.build_indexes(s)
    assert idx.tolist() == [0, 1, 2, 1, 2, 3, 0, 63]


def test_bottleneck_likelihood_matches_numerical_integral_of_density():
    eb = _randomised_bottleneck()
    values = torch.arange(-6, 7, dtype=torch.float32).repeat(1, 4, 1)  # [1, 4, 13]
    lik = eb.likelihood(values)[0]
    # density = d/dx sigmoid(f(x)), integrated with the trapezoid rule on a fine grid
    for c in range(4):
        for j, v in enumerate(values[0, c].tolist()):
            x = torch.linspace(v - 0.5, v + 0.5, 2001, dtype=torch.float32, requires_grad=True)
            grid = torch.zeros(4, 1, x.numel())
            grid[c, 0] = x
            cum = torch.sigmoid(eb._logits_cumulative(grid))[c, 0]
            (dens,) = torch.autograd.grad(cum.sum(), x)
            integral = torch.trapezoid(dens, x.detach()).item()
            assert lik[c, j].item() == pytest.approx(max(integral, 1e-9), rel=2e-3, abs=1e-6)


def test_gradients_flow_through_both_likelihoods():
    eb = _randomised_bottleneck()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    _, lik_z = eb(z, training=True)
    (-torch.log2(lik_z).sum()).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in eb.matrices)
    assert eb.quantiles.grad is None  # quantiles move only through aux_loss

    gc = GaussianConditional()
    y = torch.randn(2, 4, 3, 3, requires_grad=True)
    scales = (torch.rand(2, 4, 3, 3) + 0.5).requires_grad_()
    means = torch.randn(2, 4, 3, 3, requires_grad=True)
    _, lik_y = gc(y, scales, means, training=True)
    (-torch.log2(lik_y).sum()).backward()
    for t in (y, scales, means):
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_eval_forward_rounds_around_mean_and_bottleneck_median():
    gc = GaussianConditional()
    y = torch.tensor([0.4, 1.6, -2.2])
    mu = torch.tensor([0.3, 0.3, 0.3])
    y_rate, _ = gc(y, torch.ones(3), mu, training=False)
    torch.testing.assert_close(y_rate, torch.round(y - mu) + mu)
    eb = EntropyBottleneck(2)
    with torch.no_grad():
        eb.quantiles[:, 0, 1] = torch.tensor([0.25, -0.4])
    z = torch.tensor([[[0.8]], [[0.8]]]).unsqueeze(0)
    z_rate, _ = eb(z, training=False)
    assert z_rate.flatten().tolist() == pytest.approx([1.25, 0.6])


def test_straight_through_and_noise_quantisation():
    x = torch.tensor([0.2, 1.7, -0.6], requires_grad=True)
    y = ste_round(x)
    assert y.tolist() == [0.0, 2.0, -1.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]
    noisy = quantize(torch.zeros(10000), "noise")
    assert noisy.abs().max() <= 0.5 and noisy.std() > 0.25
    with pytest.raises(ValueError):
        quantize(x, "floor")


def test_aux_loss_moves_quantiles_to_the_tails():
    eb = _randomised_bottleneck(channels=2)
    opt = torch.optim.Adam([eb.quantiles], lr=0.5)
    first = eb.aux_loss().item()
    for _ in range(700):
        opt.zero_grad()
        loss = eb.aux_loss()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01 * first
    # the outer quantiles now cut off tail_mass / 2 on each side (in logit space)
    logits = eb._logits_cumulative(eb.quantiles.detach())[:, 0, :]
    torch.testing.assert_close(logits, eb.target.expand(2, 3), atol=0.1, rtol=0)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in eb.matrices)


def test_tables_identical_after_safetensors_round_trip(tmp_path):
    eb = _randomised_bottleneck(channels=6)
    eb.update()
    gc = GaussianConditional()
    gc.update()
    for name, model, fresh in (("eb", eb, EntropyBottleneck(6)), ("gc", gc, GaussianConditional())):
        path = tmp_path / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
        assert not fresh.has_tables
        fresh.load_state_dict(load_file(str(path)))
        for buf in ("cdf", "cdf_length", "offset"):
            assert torch.equal(getattr(fresh, buf), getattr(model, buf)), (name, buf)
        np.testing.assert_array_equal(fresh.coder_tables().cdf, model.coder_tables().cdf)


def test_bottleneck_compress_round_trip():
    eb = _randomised_bottleneck(channels=5)
    eb.update()
    z = torch.randn(2, 5, 3, 4) * 8
    z[0, 0, 0, 0] = 1e4  # far outside the tables: escape
    strings = eb.compress(z)
    z_hat = eb.decompress(strings, (3, 4))
    m = eb.medians().reshape(1, -1, 1, 1)
    torch.testing.assert_close(z_hat, torch.round(z - m) + m, rtol=0, atol=0)
