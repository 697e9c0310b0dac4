"""The training objective: negative ELBO with a Laplace likelihood and a beta-weighted KL.

    L(x) = sum_i |x_i - x_hat_i| / b  +  beta * KL(q(z|x) || N(0, I))      (paper, Sec. 3)

with b = sqrt(0.5) (a unit-variance Laplace) and beta = 0.5, warmed up linearly from 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .model import BSSOutput

#: Scale of the Laplace likelihood: variance 2 b^2 = 1.
LAPLACE_SCALE = math.sqrt(0.5)
#: beta of the beta-VAE (paper).
BETA = 0.5


def laplace_nll(x: torch.Tensor, x_hat: torch.Tensor, b: float = LAPLACE_SCALE,
                include_constant: bool = False) -> torch.Tensor:
    """Negative log-likelihood of x under a Laplace centred on x_hat, summed over inputs.

    -log p(x | z) = sum_i |x_i - x_hat_i| / b  (+ D log(2b) if ``include_constant``).
    A Laplace (L1) likelihood favours sparse residuals, which suits images and spectrograms where
    most entries are near zero; a Gaussian would spread error over many small entries.

    Shape: x, x_hat (B, D) -> (B,).
    """
    nll = (x - x_hat).abs().sum(dim=-1) / b
    if include_constant:
        nll = nll + x.shape[-1] * math.log(2 * b)
    return nll


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)), summed over sources and latent dimensions.

    KL = 1/2 sum (mu^2 + exp(logvar) - 1 - logvar).

    Shape: mu, logvar (B, K, Dz) -> (B,).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(dim=1)


@dataclass
class LossTerms:
    """Batch means of the loss and its two terms (scalars)."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


def negative_elbo(x: torch.Tensor, out: BSSOutput, beta: float = BETA, variational: bool = True) -> LossTerms:
    """The loss of VAE-BSS (or of the AE when ``variational`` is False: no KL term).

    Shape: x (B, D); ``out`` from :class:`bssvae.model.VAEBSS` -> scalars (means over the batch).
    """
    recon = laplace_nll(x, out.x_hat).mean()
    if variational:
        kl = gaussian_kl(out.mu, out.logvar).mean()
        return LossTerms(recon + beta * kl, recon, kl)
    zero = torch.zeros((), device=x.device)
    return LossTerms(recon, recon, zero)


def beta_at(epoch: float, beta: float = BETA, warmup_epochs: float = 50.0) -> float:
    """beta warm-up: rises linearly from 0 to ``beta`` over ``warmup_epochs`` (may be fractional).

    Starting with a small KL weight lets the decoder learn to reconstruct before the prior pulls
    the posteriors together, which avoids posterior collapse early in training.
    """
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, max(0.0, epoch) / warmup_epochs)
