"""Latent refinement: closing the encoder's amortization gap at test time (not in the paper).

The paper separates a mixture in one pass: the encoder gives the posterior means z_k, the shared
decoder turns each into a source. The encoder is *amortized*: one network guesses the latents of
every mixture, and its guess is not the best the decoder could do for this mixture (the
"amortization gap", Cremer et al. 2018). Refinement starts from the encoder's means and takes a
few Adam steps on the latents of each mixture, the decoder fixed, to lower the same loss as in
training, evaluated at a point (a MAP estimate rather than a distribution):

    J(z) = sum_i |x_i - sum_k D(z_k)_i| / b  +  prior_weight * 1/2 * sum_k ||z_k||^2

The weights are not touched and nothing is learned from the test set: each mixture's latents are
fitted to that mixture alone, as in separation with generative priors (Jayaram and Thickstun
2020), but started from the encoder's guess so that a few dozen steps suffice. The estimates then
go through VAEM masking as usual.

The defaults (100 steps, Adam 0.1, no prior term) were chosen on validation mixtures built from
the MNIST *training* images, never the test set; see ``results/ablations/latent-refinement``.
"""
from __future__ import annotations

import torch

from .errors import check_int, check_real
from .losses import laplace_nll
from .model import VAEBSS

#: Adam steps on the latents of each mixture.
REFINE_STEPS = 100
#: Adam's learning rate on the latents (they have unit prior scale).
REFINE_LR = 0.1
#: Weight of the Gaussian prior term 1/2 ||z||^2 (0: maximum likelihood, started at the encoder's mean).
REFINE_PRIOR = 0.0


def refine_latents(model: VAEBSS, x: torch.Tensor, z0: torch.Tensor | None = None, steps: int = REFINE_STEPS,
                   lr: float = REFINE_LR, prior_weight: float = REFINE_PRIOR) -> torch.Tensor:
    """Fit each mixture's latents to that mixture with the decoder fixed; see the module docstring.

    The model is used in evaluation mode (BatchNorm's running statistics), so every mixture's
    latents are independent of the others in the batch: refining a batch gives the same result as
    refining its mixtures one by one. The model's parameters receive no gradient and are unchanged.

    Args:
        model: a trained VAE-BSS (or AE) model.
        x: mixtures (B, D) on the model's device.
        z0: starting latents (B, K, Dz); default the encoder's means.
        steps: Adam steps (0 returns ``z0``).
        lr: Adam's learning rate.
        prior_weight: weight of 1/2 ||z||^2 in the objective (>= 0).

    Shape: x (B, D) -> z (B, K, Dz), float32, detached.
    """
    steps = check_int("steps", steps, minimum=0)
    check_real("lr", lr, expected="a positive learning rate", low=0, low_open=True)
    check_real("prior_weight", prior_weight, expected="a weight >= 0", low=0)
    was_training = model.training
    model.eval()
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        if z0 is None:
            with torch.no_grad():
                z0, _ = model.encode(x)
        z = z0.detach().clone().float().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        with torch.enable_grad():  # also when called under no_grad, e.g. from VAEBSS.separate
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                # Summed over mixtures: each mixture's gradient is its own (Adam is per coordinate).
                loss = laplace_nll(x, model.decode(z).float().sum(dim=1)).sum()
                if prior_weight:
                    loss = loss + prior_weight * 0.5 * z.pow(2).sum()
                loss.backward()
                opt.step()
        return z.detach()
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)
        model.train(was_training)
