"""Context modules: checkerboard convention, attention equivalences, window mask facts, causality."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import FAMILY, TINY
from mlic.context.attention import linear_attention, softmax_attention
from mlic.context.checkerboard import ANCHOR, NONANCHOR, anchor_mask, keep, squeeze, unsqueeze
from mlic.context.local import CheckerboardWindowAttention, window_mask
from mlic.models import build
from mlic.models.slices import QuantizeStep, run_slices


def test_anchor_parity_is_r_plus_c_odd():
    m = anchor_mask(3, 4)[0, 0]
    assert m[0, 0] == 0 and m[0, 1] == 1 and m[1, 0] == 1 and m[1, 1] == 0
    t = torch.arange(2 * 3 * 4, dtype=torch.float32).view(1, 2, 3, 4)
    for half in (ANCHOR, NONANCHOR):
        sq = squeeze(t, half)
        assert sq.shape == (1, 2, 3, 2)
        assert torch.equal(unsqueeze(sq, half), keep(t, half))
    # row 0 anchors are columns 1, 3; row 1 anchors are columns 0, 2
    assert squeeze(t, ANCHOR)[0, 0].tolist() == [[1, 3], [4, 6], [9, 11]]


def test_window_mask_facts():
    mask = window_mask(10, 10, 5)
    assert set(mask.unique().tolist()) == {-100.0, 0.0}
    centre_non, centre_anc = 5 * 10 + 5, 5 * 10 + 4
    allowed = mask[centre_non] == 0
    assert allowed.sum() == 144 and (~allowed).all(1).sum() == 13
    allowed = mask[centre_anc] == 0
    assert allowed.sum() == 169 and (~allowed).all(1).sum() == 12
    # every non-anchor query slot is fully masked; anchor query slots only see anchor keys
    anc = F.unfold(anchor_mask(10, 10), 5, padding=2)[0, :, centre_non].bool()
    assert (mask[centre_non][~anc] == -100).all()
    assert (mask[centre_non][anc][:, ~anc] == -100).all()
    # padded slots at the corner are masked for everyone
    corner = mask[0]
    assert (corner.view(5, 5, 25)[:2] == -100).all()


def test_linear_attention_matches_explicit_einsum():
    q, k, v = torch.randn(2, 3, 8, 20), torch.randn(2, 3, 8, 20), torch.randn(2, 3, 8, 20)
    kt = torch.exp(k) / torch.exp(k).sum(-1, keepdim=True)
    qt = torch.exp(q) / torch.exp(q).sum(-2, keepdim=True)
    g = torch.einsum("bhdn,bhen->bhde", kt, v)
    want = torch.einsum("bhde,bhdn->bhen", g, qt)
    torch.testing.assert_close(linear_attention(q, k, v), want)


def test_softmax_attention_matches_reference_with_and_without_replacement():
    q, k, v = torch.randn(1, 2, 16, 37), torch.randn(1, 2, 16, 29), torch.randn(1, 2, 16, 29)
    logits = torch.einsum("bhdq,bhdk->bhqk", q, k) * 0.25
    want = torch.einsum("bhqk,bhdk->bhdq", logits.softmax(-1), v)
    torch.testing.assert_close(softmax_attention(q, k, v, scale=0.25), want, rtol=1e-5, atol=1e-5)
    far = torch.rand(37, 29) > 0.6
    masked = logits.masked_fill(far, -100.0)
    want = torch.einsum("bhqk,bhdk->bhdq", masked.softmax(-1), v)
    got = softmax_attention(q, k, v, scale=0.25, replace=lambda rows: far[rows], chunk=8)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def _reference_window_attention(m: CheckerboardWindowAttention, t: torch.Tensor) -> torch.Tensor:
    """Per-position loop written straight from architecture.md §5.3.2."""
    b, c, h, w = t.shape
    k, heads, d = m.kernel, m.heads, m.head_dim
    tok = m.qkv_proj(m.norm1(t.flatten(2).transpose(1, 2))).transpose(1, 2).reshape(b, 3 * c, h, w)
    q, kk, v = (F.pad(x, (k // 2,) * 4) for x in tok.split(c, dim=1))
    amap = F.pad(anchor_mask(h, w), (k // 2,) * 4)[0, 0]
    out = torch.zeros(b, 2 * c, h, w)
    for r in range(h):
        for col in range(w):
            win = lambda x: x[:, :, r : r + k, col : col + k].reshape(b, c, k * k)  # noqa: E731
            qw, kw, vw = win(q), win(kk), win(v)
            slots = amap[r : r + k, col : col + k].reshape(-1)
            fused = torch.zeros(b, c, k * k)
            for eta in range(heads):
                ch = [cc for cc in range(c) if cc % heads == eta]  # interleaved input split
                a = torch.einsum("bda,bdz->baz", qw[:, ch], kw[:, ch]) * d**-0.5
                for sa in range(k * k):
                    for sb in range(k * k):
                        ya, xa, yb, xb = sa // k, sa % k, sb // k, sb % k
                        a[:, sa, sb] += m.relative_position_table[(ya - yb + k - 1) * (2 * k - 1) + (xa - xb + k - 1), eta]
                        if not (slots[sa] and slots[sb]):
                            a[:, sa, sb] -= 100.0
                o = torch.einsum("baz,bdz->bda", a.softmax(-1), vw[:, ch])
                fused[:, eta * d : (eta + 1) * d] = o  # head-blocked output order
            u = F.conv2d(fused.view(b, c, k, k), m.fusion.weight, m.fusion.bias).view(b, 2 * c)
            u = m.proj(u)
            out[:, :, r, col] = u + m.mlp(m.norm2(u))
    return out


def test_window_attention_matches_the_per_position_definition():
    torch.manual_seed(3)
    m = CheckerboardWindowAttention(8, heads=2, kernel=5)
    t = keep(torch.randn(2, 8, 6, 6), ANCHOR)
    with torch.no_grad():
        torch.testing.assert_close(m(t), _reference_window_attention(m, t), rtol=1e-4, atol=1e-5)


class _Probe(QuantizeStep):
    """Records the parameters each pass sees."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.seen: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, i, half, scales, means):
        self.seen[(i, half)] = (scales.clone(), means.clone())
        return super().__call__(i, half, scales, means)


def _params(model, y, hyper):
    probe = _Probe(y, model.slice_channels, "round")
    with torch.no_grad():
        run_slices(model, hyper, probe)
    return probe.seen


def _same(a, b):
    return torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_window_attention_on_one_half_gives_the_full_grid_bits():
    """The non-anchor pass computes only the windows centred on its half: same bits as the
    full grid squeezed, at odd heights, small latents and both thread counts."""
    saved = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for (h, w), c in (((4, 4), 16), ((17, 10), 32), ((32, 48), 32)):
                torch.manual_seed(h * w + c)
                module = CheckerboardWindowAttention(c).eval()
                y = keep(torch.randn(2, c, h, w) * 3, ANCHOR)
                with torch.no_grad():
                    full = module(y)
                    for half in (ANCHOR, NONANCHOR):
                        part = module(y, half)
                        assert part.shape == (2, 2 * c, h, w // 2)
                        assert torch.equal(part, squeeze(full, half)), (threads, h, w, half)
    finally:
        torch.set_num_threads(saved)


@pytest.mark.parametrize("name", FAMILY)
def test_causality_of_the_slice_schedule(name):
    model = build(name, **TINY).eval()
    c, s, h, w = model.slice_channels, model.slices, 8, 8
    y = 3 * torch.randn(1, model.M, h, w)
    hyper = torch.randn(1, 2 * model.M, h, w)
    base = _params(model, y, hyper)

    def perturbed(i, half):
        y2 = y.clone()
        sl = y2[:, i * c : (i + 1) * c]
        sl += 7.0 * keep(torch.ones_like(sl), half) * (torch.rand_like(sl) > 0.5)
        return _params(model, y2, hyper)

    for i in range(s):
        # non-anchors of slice i: nothing up to and including slice i's own passes may change
        p = perturbed(i, NONANCHOR)
        for j in range(i + 1):
            assert _same(p[(j, ANCHOR)], base[(j, ANCHOR)]), (i, j)
            assert _same(p[(j, NONANCHOR)], base[(j, NONANCHOR)]), (i, j)
        # anchors of slice i: the anchor pass of slice i and everything before stay put ...
        p = perturbed(i, ANCHOR)
        for j in range(i):
            assert _same(p[(j, ANCHOR)], base[(j, ANCHOR)]) and _same(p[(j, NONANCHOR)], base[(j, NONANCHOR)])
        assert _same(p[(i, ANCHOR)], base[(i, ANCHOR)])
        # ... but the non-anchor pass of slice i must react (the test can fail)
        assert not _same(p[(i, NONANCHOR)], base[(i, NONANCHOR)])
        if i + 1 < s:  # and later slices see slice i
            assert not _same(p[(i + 1, ANCHOR)], base[(i + 1, ANCHOR)])
