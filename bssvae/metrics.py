"""Evaluation: matching K estimates to M true sources, then PSNR and SSIM (scikit-image).

Our protocol (the paper states none):

- Estimates are matched to true sources per mixture with the Hungarian algorithm on mean squared
  error (as the authors' code does). With K > M the surplus estimates are dropped from the scores
  and returned for inspection; with K < M each unmatched true source is scored against an all-zero
  estimate (a missed source), and the assignment minimises that total error, misses included.
- ``psnr`` / ``ssim`` (our column): sources compared on the digit scale [0, 1] (the halved sources
  times 2), data range 1.
- ``psnr_halved`` / ``ssim_halved``: the halved sources in [0, 0.5] as they are, data range 1.
  This is 20 log10(2) = 6.02 dB more lenient for PSNR; we think the paper used it.
- Scores are averaged over every true source image of every test mixture. PSNR is capped at
  :data:`PSNR_CAP` dB for exact reconstructions so the mean stays finite.
- SSIM: scikit-image's ``structural_similarity`` defaults (7x7 uniform window, K1 = 0.01,
  K2 = 0.03), on each 28 x 28 image.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .errors import BssvaeError, check_tensor

PSNR_CAP = 100.0


@dataclass
class Matching:
    """Estimates aligned with true sources.

    Shapes (B mixtures, K estimates, M true sources, D inputs):
        matched (B, M, D): the estimate assigned to each true source (zeros where none is, K < M);
        assignment (B, M): index of that estimate in 0..K-1, or -1;
        surplus (B, max(K - M, 0), D): the estimates left over, in their original order.
    """

    matched: torch.Tensor
    assignment: torch.Tensor
    surplus: torch.Tensor


def match_sources(estimates: torch.Tensor, sources: torch.Tensor) -> Matching:
    """Permutation-invariant matching by the Hungarian algorithm on mean squared error.

    Shape: estimates (B, K, D), sources (B, M, D) -> :class:`Matching`.
    """
    estimates = check_tensor("estimates", estimates, ndim=3)
    sources = check_tensor("sources", sources, ndim=3)
    if estimates.shape[0] != sources.shape[0] or estimates.shape[2] != sources.shape[2]:
        raise BssvaeError(f"estimates and sources: expected shapes (B, K, D) and (B, M, D) with the same B "
                          f"and D, got {tuple(estimates.shape)} and {tuple(sources.shape)}")
    est = estimates.detach().cpu().double()
    ref = sources.detach().cpu().double()
    b, k, d = est.shape
    m = ref.shape[1]
    # cost[b, m, k] = mean over D of (ref_m - est_k)^2
    cost = ((ref.unsqueeze(2) - est.unsqueeze(1)) ** 2).mean(dim=-1).numpy()
    if k < m:
        # M - K sources are left without an estimate and scored against zeros: M - K "missed" columns
        # cost each source's energy, so that the square assignment uses every estimate and minimises
        # the error that is actually scored.
        missed = np.repeat((ref ** 2).mean(dim=-1).numpy()[:, :, None], m - k, axis=2)
        cost = np.concatenate([cost, missed], axis=2)
    assignment = np.full((b, m), -1, dtype=np.int64)
    for i in range(b):
        rows, cols = linear_sum_assignment(cost[i])
        assignment[i, rows] = np.where(cols < k, cols, -1)
    assign_t = torch.from_numpy(assignment)
    gather = assign_t.clamp_min(0)
    matched = torch.gather(estimates.detach().cpu(), 1, gather.unsqueeze(-1).expand(b, m, d)).clone()
    matched[assign_t < 0] = 0.0
    n_surplus = max(k - m, 0)
    if n_surplus:
        used = torch.zeros(b, k, dtype=torch.bool)
        used.scatter_(1, gather, assign_t >= 0)
        order = torch.argsort(used.to(torch.int8), dim=1, stable=True)[:, :n_surplus]
        surplus = torch.gather(estimates.detach().cpu(), 1, order.unsqueeze(-1).expand(b, n_surplus, d))
    else:
        surplus = estimates.new_zeros((b, 0, d)).cpu()
    return Matching(matched, assign_t, surplus)


def psnr(reference: np.ndarray, estimate: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR in dB of one image (scikit-image), capped at :data:`PSNR_CAP` for exact matches."""
    if np.array_equal(reference, estimate):
        return PSNR_CAP
    return float(min(PSNR_CAP, peak_signal_noise_ratio(reference, estimate, data_range=data_range)))


def ssim(reference: np.ndarray, estimate: np.ndarray, data_range: float = 1.0) -> float:
    """SSIM of one 2-D image (scikit-image defaults: 7x7 uniform window, K1 = 0.01, K2 = 0.03)."""
    return float(structural_similarity(reference, estimate, data_range=data_range))


@dataclass
class ImageScores:
    """Mean scores over all true source images, and per-mixture means (for intervals and counts)."""

    psnr: float
    ssim: float
    psnr_halved: float
    ssim_halved: float
    per_item: dict[str, np.ndarray] = field(default_factory=dict)
    matching: Matching | None = None

    def summary(self) -> dict[str, float]:
        return {"psnr": self.psnr, "ssim": self.ssim, "psnr_halved": self.psnr_halved,
                "ssim_halved": self.ssim_halved}


def evaluate_images(estimates: torch.Tensor, sources: torch.Tensor, source_scale: float = 0.5,
                    image_shape: tuple[int, int] = (28, 28)) -> ImageScores:
    """Match estimates to sources, then PSNR and SSIM in both columns (see the module docstring).

    Shape: estimates (B, K, D), sources (B, M, D) with D = prod(image_shape).
    """
    match = match_sources(estimates, sources)
    ref = sources.detach().cpu().double().numpy()
    est = match.matched.double().numpy()
    b, m, _ = ref.shape
    ref = ref.reshape(b, m, *image_shape)
    est = est.reshape(b, m, *image_shape)
    up = 1.0 / source_scale  # back to the digit scale
    scores = {k: np.empty((b, m)) for k in ("psnr", "ssim", "psnr_halved", "ssim_halved")}
    for i in range(b):
        for j in range(m):
            r, e = ref[i, j], est[i, j]
            scores["psnr"][i, j] = psnr(r * up, e * up)
            scores["ssim"][i, j] = ssim(r * up, e * up)
            scores["psnr_halved"][i, j] = psnr(r, e)
            scores["ssim_halved"][i, j] = ssim(r, e)
    per_item = {k: v.mean(axis=1) for k, v in scores.items()}
    return ImageScores(**{k: float(v.mean()) for k, v in scores.items()}, per_item=per_item, matching=match)
