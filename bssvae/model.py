"""The VAE-BSS network (paper, Table I) and its AE variant.

An encoder maps a mixture x to K latent sources, each a diagonal Gaussian q(z_k | x) =
N(mu_k, diag(exp(logvar_k))). One decoder g, shared by all sources, maps each z_k to a source
estimate s_hat_k = g(z_k); the reconstruction is x_hat = sum_k s_hat_k. Because the decoder is
shared and the sources are exchangeable, K need not equal the true number of sources M.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelConfig
from .errors import BssvaeError, check_tensor


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear + BatchNorm1d + ReLU for each consecutive pair of sizes (as in the authors' code)."""
    layers: list[nn.Module] = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


@dataclass
class BSSOutput:
    """What the network computes for a batch of mixtures.

    Shapes (B mixtures, K sources, D inputs, Dz latent dimensions):
        s_hat (B, K, D): decoded sources; x_hat (B, D): their sum;
        mu, logvar, z (B, K, Dz): posterior means, log-variances, and the decoded latents.
    """

    s_hat: torch.Tensor
    x_hat: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


class VAEBSS(nn.Module):
    """VAE-BSS (Neri et al. 2021, Sec. 3 and Table I); ``config.variational=False`` gives the AE.

    Encoder: D -> hidden_dims (Linear + BatchNorm + ReLU) -> Linear to 2 x K x Dz (means and
    log-variances). Decoder, shared by the K sources: Dz -> reversed hidden_dims -> D, sigmoid.

    Args:
        config: sizes; :meth:`ModelConfig.mnist` and :meth:`ModelConfig.audio` give Table I's rows.
    """

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig.mnist()
        c = self.config
        self.encoder = _mlp([c.input_dim, *c.hidden_dims])
        self.head = nn.Linear(c.hidden_dims[-1], 2 * c.n_sources * c.latent_dim)
        rev = list(reversed(c.hidden_dims))
        self.decoder = nn.Sequential(_mlp([c.latent_dim, *rev]), nn.Linear(rev[-1], c.input_dim), nn.Sigmoid())

    @property
    def n_sources(self) -> int:
        return self.config.n_sources

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters. Shape: x (B, D) -> mu, logvar (B, K, Dz), float32."""
        h = self.head(self.encoder(x)).float()
        c = self.config
        h = h.view(x.shape[0], 2, c.n_sources, c.latent_dim)
        return h[:, 0], h[:, 1]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The shared decoder applied to each source. Shape: z (B, K, Dz) -> s_hat (B, K, D)."""
        b, k, dz = z.shape
        return self.decoder(z.reshape(b * k, dz)).view(b, k, -1)

    def forward(self, x: torch.Tensor) -> BSSOutput:
        """Encode, sample (training, VAE only) or take the mean, decode, sum.

        Shape: x (B, D) -> :class:`BSSOutput`.
        """
        mu, logvar = self.encode(x)
        if self.config.variational and self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        s_hat = self.decode(z).float()
        return BSSOutput(s_hat=s_hat, x_hat=s_hat.sum(dim=1), mu=mu, logvar=logvar, z=z)

    @torch.no_grad()
    def separate(self, x, mask: bool = True, batch_size: int = 1000, refine_steps: int = 0) -> torch.Tensor:
        """Separate mixtures in evaluation mode (z = posterior mean, or refined from it).

        Args:
            x: mixtures (B, D) with finite values >= 0.
            mask: apply VAEM masking (:func:`bssvae.masks.vaem`) so the estimates sum to x.
            refine_steps: if > 0, fit each mixture's latents to it with this many Adam steps
                before decoding (:func:`bssvae.refine.refine_latents`; not in the paper).

        Shape: x (B, D) -> (B, K, D).
        """
        from .masks import vaem
        from .refine import refine_latents

        x = check_tensor("x", x, ndim=2, min_value=0.0).to(next(self.parameters()).dtype)  # e.g. numpy's float64
        if x.shape[1] != self.config.input_dim:
            raise BssvaeError(f"x: expected {self.config.input_dim} values per mixture for this model, "
                              f"got {x.shape[1]}")
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        outs = []
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size].to(device)
            if refine_steps:
                s_hat = self.decode(refine_latents(self, xb, steps=refine_steps)).float()
            else:
                s_hat = self(xb).s_hat
            outs.append((vaem(s_hat, xb) if mask else s_hat).cpu())
        self.train(was_training)
        return torch.cat(outs)
