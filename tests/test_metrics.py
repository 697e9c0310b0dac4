import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bssvae.errors import BssvaeError
from bssvae.metrics import PSNR_CAP, evaluate_images, match_sources, psnr, ssim


def test_matching_recovers_known_permutation():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(20, 3, 16, generator=g)
    perms = [torch.randperm(3, generator=g) for _ in range(20)]
    est = torch.stack([s[i, p] for i, p in enumerate(perms)])
    m = match_sources(est, s)
    torch.testing.assert_close(m.matched, s)
    for i, p in enumerate(perms):
        assert torch.equal(p[m.assignment[i]], torch.arange(3))


def test_surplus_kept_and_missing_zero():
    s = torch.stack([torch.ones(4), torch.zeros(4)]).unsqueeze(0)  # (1, 2, 4)
    est = torch.stack([torch.zeros(4), torch.full((4,), 0.5), torch.ones(4)]).unsqueeze(0)
    m = match_sources(est, s)
    torch.testing.assert_close(m.matched[0], s[0])
    torch.testing.assert_close(m.surplus[0], torch.full((1, 4), 0.5))
    few = match_sources(est[:, 1:2], s)  # K = 1 < M = 2: one estimate of 0.5s
    assert (few.assignment[0] == -1).sum() == 1
    missing = int((few.assignment[0] == -1).nonzero()[0])
    torch.testing.assert_close(few.matched[0, missing], torch.zeros(4))  # an unmatched source gets zeros
    torch.testing.assert_close(few.matched[0, 1 - missing], torch.full((4,), 0.5))
    assert m.surplus.shape == (1, 1, 4)


def test_matching_validates():
    with pytest.raises(BssvaeError, match="same B"):
        match_sources(torch.rand(2, 2, 4), torch.rand(3, 2, 4))


def test_psnr_hand_computed():
    ref = np.zeros((28, 28))
    est = np.full((28, 28), 0.1)
    assert psnr(ref, est) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert psnr(ref, ref) == PSNR_CAP


def test_ssim_hand_computed():
    ref = np.random.default_rng(0).random((28, 28))
    assert ssim(ref, ref) == pytest.approx(1.0)
    # constant images: SSIM reduces to the luminance term (2 mu1 mu2 + C1) / (mu1^2 + mu2^2 + C1)
    a, b = np.full((28, 28), 0.2), np.full((28, 28), 0.6)
    c1 = (0.01 * 1.0) ** 2
    assert ssim(a, b) == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.04 + 0.36 + c1), rel=1e-6)


def test_ssim_hand_computed_on_one_window():
    """A 7 x 7 image is exactly one 7 x 7 window, so SSIM is the formula on whole-image moments (with
    the sample variance and covariance, ddof = 1), which tests K2, the window and the covariance."""
    ref = np.arange(49, dtype=float).reshape(7, 7) / 48
    est = 0.5 * ref + 0.1
    mx, my = 24 / 48, 0.5 * 24 / 48 + 0.1
    vx = (49 * 50 / 12) / 48**2  # sample variance of 0, 1, ..., 48 is n (n + 1) / 12 with n = 49
    vy, cxy = 0.25 * vx, 0.5 * vx
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert ssim(ref, est) == pytest.approx(expected, rel=1e-9)
    assert ssim(ref, est, data_range=0.5) != pytest.approx(expected, rel=1e-3)  # the range enters C1, C2


def test_two_columns():
    """Our column compares digits (x2); the halved column is 20 log10 2 dB higher in PSNR."""
    g = torch.Generator().manual_seed(1)
    s = torch.rand(8, 2, 784, generator=g) * 0.5
    est = (s + 0.02 * torch.randn(s.shape, generator=g)).clamp(0, 1).flip(1)
    r = evaluate_images(est, s)
    assert r.psnr_halved - r.psnr == pytest.approx(20 * math.log10(2), abs=1e-6)
    assert 0 < r.ssim < 1 and r.per_item["psnr"].shape == (8,)


def test_mixture_as_estimate_is_worse_than_truth():
    g = torch.Generator().manual_seed(2)
    s = torch.rand(4, 2, 784, generator=g) * 0.5
    good = evaluate_images(s, s)
    bad = evaluate_images(s.sum(1, keepdim=True).expand(-1, 2, -1), s)
    assert good.psnr == PSNR_CAP and bad.psnr < 15


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_matching_is_permutation_invariant(k, m, seed):
    g = torch.Generator().manual_seed(seed)
    est = torch.rand(3, k, 8, generator=g)
    ref = torch.rand(3, m, 8, generator=g)
    perm = torch.randperm(k, generator=g)
    a, b = match_sources(est, ref), match_sources(est[:, perm], ref)
    # the total matched error is the same whatever order the estimates come in
    err_a = ((a.matched - ref) ** 2).sum()
    err_b = ((b.matched - ref) ** 2).sum()
    assert torch.isclose(err_a, err_b, rtol=1e-5)
    assert torch.isfinite(a.matched).all() and a.surplus.shape[1] == max(k - m, 0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_matching_minimises_the_scored_error(k, m, seed):
    """Brute force over every way to give the M sources distinct estimates (zeros where K < M)."""
    import itertools

    g = torch.Generator().manual_seed(seed)
    est = torch.rand(1, k, 6, generator=g) * torch.rand(1, k, 1, generator=g)
    ref = torch.rand(1, m, 6, generator=g) * torch.rand(1, m, 1, generator=g)
    zeros = torch.zeros(6)
    best = min(
        sum(float(((ref[0, j] - (est[0, c] if c >= 0 else zeros)) ** 2).sum()) for j, c in enumerate(cols))
        for cols in itertools.permutations(list(range(k)) + [-1] * max(m - k, 0), m)
    )
    got = match_sources(est, ref)
    assert float(((got.matched - ref) ** 2).sum()) == pytest.approx(best, rel=1e-6, abs=1e-9)
    used = got.assignment[0][got.assignment[0] >= 0]
    assert len(set(used.tolist())) == min(k, m)  # every estimate used when K <= M, no estimate twice


def test_single_estimate_goes_to_the_source_it_explains_best():
    """K = 1 < M = 2: the estimate 0.2 is assigned to the strong source 0.5, not the empty one."""
    ref = torch.tensor([[[0.5], [0.0]]])
    got = match_sources(torch.tensor([[[0.2]]]), ref)
    assert got.assignment.tolist() == [[0, -1]]
    assert float(((got.matched - ref) ** 2).sum()) == pytest.approx(0.09)


def test_both_columns_at_their_absolute_level():
    """A hand case pins each column's level, not only their difference: one constant source of 0.25 on the
    halved scale (a digit pixel of 0.5) estimated as 0.30 (0.6). Our column scores the digit scale: PSNR
    10 log10(1 / 0.1^2) = 20 dB, SSIM the luminance term of 0.5 and 0.6; the halved column scores 0.25 and
    0.30 as they are: 26.02 dB and the luminance term of 0.25 and 0.30."""
    s = torch.full((1, 1, 784), 0.25, dtype=torch.float64)
    r = evaluate_images(s + 0.05, s)
    c1 = 0.01**2
    luminance = lambda a, b: (2 * a * b + c1) / (a * a + b * b + c1)  # noqa: E731
    assert r.psnr == pytest.approx(20.0, abs=1e-9)
    assert r.psnr_halved == pytest.approx(10 * math.log10(1 / 0.05**2), abs=1e-9)
    assert r.ssim == pytest.approx(luminance(0.5, 0.6), rel=1e-9)
    assert r.ssim_halved == pytest.approx(luminance(0.25, 0.30), rel=1e-9)


def test_surplus_estimates_keep_their_order():
    """K = 4 estimates of M = 1 source: the three left over come back in their original order."""
    s = torch.ones(1, 1, 4)
    est = torch.stack([torch.full((4,), v) for v in (0.1, 0.9, 0.3, 0.2)]).unsqueeze(0)
    m = match_sources(est, s)
    torch.testing.assert_close(m.matched[0, 0], torch.full((4,), 0.9))
    torch.testing.assert_close(m.surplus[0, :, 0], torch.tensor([0.1, 0.3, 0.2]))


def test_psnr_is_capped_where_the_error_is_tiny_but_not_zero():
    ref = np.full((28, 28), 0.5)
    assert psnr(ref, ref + 1e-7) == PSNR_CAP
    assert psnr(ref, ref + 1e-3) == pytest.approx(60.0)
