"""Masking: VAEM (the paper's mask-based estimate) and the oracle masks IBM and IRM."""
from __future__ import annotations

import torch

from .errors import check_finite


def vaem(s_hat: torch.Tensor, x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """VAEM estimate: s_check_k = s_hat_k * x / x_hat, with x_hat = sum_k s_hat_k (paper, Sec. 3).

    The masks s_hat_k / x_hat are non-negative and sum to one, so the estimates sum exactly to x.
    Where x_hat <= eps (nothing decoded), the mixture is split evenly among the K sources instead
    of dividing by zero, so the result stays finite (all-zero or silent inputs included).
    NaN or inf in ``s_hat`` or ``x`` is refused: ``x_hat > eps`` is false for NaN, so such sources
    would be split evenly and look like a plausible estimate (e.g. decoded by damaged weights).

    Shape: s_hat (B, K, D), x (B, D) -> s_check (B, K, D).
    """
    x_hat = s_hat.sum(dim=1, keepdim=True)
    # one test (and one device sync) for both: NaN or inf in s_hat shows in its sum, K times smaller to scan;
    # only a failure scans each input again, to name it
    if not bool(torch.isfinite(x).all() & torch.isfinite(x_hat).all()):
        check_finite("x", x, "VAEM cannot split a mixture by them")
        check_finite("s_hat", s_hat, "VAEM cannot split a mixture by them")
    ok = x_hat > eps
    weights = torch.where(ok, s_hat / torch.where(ok, x_hat, torch.ones_like(x_hat)),
                          torch.full_like(s_hat, 1.0 / s_hat.shape[1]))
    return weights * x.unsqueeze(1)


def ideal_ratio_mask(s: torch.Tensor, x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """IRM oracle: s_m / sum_j s_j applied to x (true magnitudes; an upper bound, not a method).

    Shape: s (B, M, D), x (B, D) -> (B, M, D).
    """
    return vaem(s, x, eps)


def ideal_binary_mask(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """IBM oracle: each input entry goes wholly to the source that dominates it (ties: the first).

    Shape: s (B, M, D), x (B, D) -> (B, M, D).
    """
    winner = s.argmax(dim=1, keepdim=True)
    mask = torch.zeros_like(s).scatter_(1, winner, 1.0)
    return mask * x.unsqueeze(1)
