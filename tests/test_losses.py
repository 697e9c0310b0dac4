import math

import torch

from bssvae.losses import LAPLACE_SCALE, beta_at, gaussian_kl, laplace_nll, negative_elbo
from bssvae.model import BSSOutput


def test_laplace_hand_computed():
    x = torch.tensor([[0.0, 1.0, 0.5]])
    x_hat = torch.tensor([[0.5, 0.5, 0.5]])
    # |diffs| = 0.5, 0.5, 0 -> 1.0 / sqrt(0.5) = sqrt(2)
    torch.testing.assert_close(laplace_nll(x, x_hat), torch.tensor([math.sqrt(2.0)]))
    with_c = laplace_nll(x, x_hat, include_constant=True)
    torch.testing.assert_close(with_c, torch.tensor([math.sqrt(2.0) + 3 * math.log(2 * LAPLACE_SCALE)]))
    assert abs(2 * LAPLACE_SCALE**2 - 1.0) < 1e-12  # unit variance


def test_gaussian_kl_hand_computed():
    mu = torch.zeros(1, 2, 3)
    logvar = torch.zeros(1, 2, 3)
    torch.testing.assert_close(gaussian_kl(mu, logvar), torch.tensor([0.0]))
    mu = torch.tensor([[[1.0]]])
    logvar = torch.tensor([[[math.log(2.0)]]])
    # 0.5 * (1 + 2 - 1 - log 2)
    torch.testing.assert_close(gaussian_kl(mu, logvar), torch.tensor([0.5 * (2 - math.log(2.0))]))


def test_negative_elbo_combines_terms():
    s_hat = torch.full((2, 2, 3), 0.25)
    out = BSSOutput(s_hat, s_hat.sum(1), torch.ones(2, 2, 4), torch.zeros(2, 2, 4), torch.ones(2, 2, 4))
    x = torch.full((2, 3), 0.75)  # x_hat = 0.5: |x - x_hat| = 0.25 in each of 3 pixels
    terms = negative_elbo(x, out, beta=0.5)
    recon = 3 * 0.25 / math.sqrt(0.5)  # per mixture, then the mean over the batch of 2 equal mixtures
    torch.testing.assert_close(terms.recon, torch.tensor(recon))
    torch.testing.assert_close(terms.kl, torch.tensor(4.0))  # 8 dims x 0.5 x mu^2
    torch.testing.assert_close(terms.loss, torch.tensor(recon + 0.5 * 4.0))
    torch.testing.assert_close(negative_elbo(x, out, beta=0.25).loss, torch.tensor(recon + 0.25 * 4.0))
    ae = negative_elbo(x, out, beta=0.5, variational=False)
    assert float(ae.kl) == 0.0
    torch.testing.assert_close(ae.loss, torch.tensor(recon))


def test_beta_warmup():
    assert beta_at(0, 0.5, 50) == 0.0
    assert beta_at(25, 0.5, 50) == 0.25
    assert beta_at(500, 0.5, 50) == 0.5
    assert beta_at(3, 0.5, 0) == 0.5
