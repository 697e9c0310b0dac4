"""GLO baseline: GLO masking (Halperin, Ephrat & Hoshen, "Neural separation of observed and unobserved
distributions", ICML 2019, arXiv 1811.12739; called *GLO Masking* in its first version and *Latent
Mixture Masking* in the ICML one).

The setting is semi-supervised: mixtures y = b + x where b comes from an *observed* distribution B
(clean samples of it are available) and x from an *unobserved* one X. The method, as the paper
describes it:

1. Train a GLO generator G_B on the observed samples (Generative Latent Optimization, Bojanowski
   et al., ICML 2018: a generator and one free latent code per training sample, learned jointly,
   codes kept on the unit sphere): min_{G_B, z} sum_b L(G_B(z_b), b).
2. Freeze G_B; train a second generator G_X and a pair of codes (z_B, z_X) per *training mixture*
   so that the two generated parts add up to the mixture:
   min_{G_X, z_B, z_X} sum_y L(G_B(z_B^y) + G_X(z_X^y), y).
3. Separate a test mixture by optimising its two codes with both generators frozen, then mask:
   s_B = y * G_B / (G_B + G_X), s_X = y * G_X / (G_B + G_X) (the generated parts are used as
   Wiener-like masks on the mixture rather than as the estimates themselves).

The paper then uses these masks to initialise Neural Egg Separation (NES); we implement GLO
masking only, which is what the paper under reproduction calls "GLO" in its Table II.

Our choices:

- **Observed distribution**: on MNIST every source is a digit, so "one observed source
  distribution" is the distribution of *single clean digits* (halved, as sources are). GLO sees
  clean digits from one half of the training images (the first half of a seeded permutation), and
  fixed mixtures of M digits made from the other half, so no image appears both clean and mixed
  (as in the authors' demo code, which splits its training set the same way). This is
  information VAE-BSS never gets: it sees only mixtures. GLO is therefore a *semi-supervised
  reference*, not an unsupervised competitor; Table II marks it so. Because the unobserved source
  is also a digit, G_X is trained on the same kind of data as G_B sees; nothing prevents it from
  modelling digits too, which is why the masks, not the generated parts, are used.
- **Networks**: both generators are the VAE's decoder (Table I sizes: 20-300-400-500-600-700-D,
  BatchNorm, ReLU, sigmoid), latent dimension 20 (the VAE's D_z).
- **Loss L**: the VAE's Laplace NLL (an L1 loss), for both stages and for test-time optimisation;
  Bojanowski et al. use an L1 + Laplacian-pyramid loss, meant for larger natural images.
- **Codes**: on the unit sphere, initialised as GLO's authors recommend by a PCA of the observed
  sources (projection on the first ``latent_dim`` principal directions, normalised); a mixture's
  z_B starts from the same projection of the mixture and its z_X from the projection on the
  training mixtures' principal directions (X is unobserved, mixtures are all we have of it),
  in training and at test time alike.
- **Optimisers**: Adam for the generators (the run's learning rate and schedule), SparseAdam
  (``code_lr``, same schedule) for the per-sample codes, both stages ``epochs`` long; at test time
  Adam (``test_lr``) for ``test_steps`` steps, one start.
- **K**: GLO masking separates a mixture into two parts (observed / unobserved), so it is defined
  for K = 2 only, as in the paper's Table II (n/a for K = 3); other K are refused. With M > 2
  digits the unobserved part is the sum of the other M - 1 digits.
- **Tasks**: GLO needs clean training sources. It runs on tasks that expose them: MNIST
  (``train_images``), or any task with a ``glo_data(generator)`` method returning
  ``(observed (N_B, D), mixtures (N_Y, D))`` on its device.
"""
from __future__ import annotations

import dataclasses
import math
import time

import torch
from torch import nn

from ..errors import BssvaeError
from ..losses import laplace_nll
from ..masks import vaem
from ..model import VAEBSS
from ..results import read_history, write_history
from .common import MethodOutput, RunContext


def check_config(config) -> None:
    """Refuse a configuration GLO masking is not defined for (K != 2), before anything is written."""
    if config.n_sources != 2:
        raise BssvaeError(f"n_sources: GLO masking separates an observed and an unobserved part, so it needs K = 2, "
                          f"got K = {config.n_sources} (the paper's Table II has no GLO entry for K = 3)")


def make_generator(model_config, latent_dim: int = 20) -> nn.Module:
    """A GLO generator: the VAE's decoder (Table I), latent_dim -> D. Shape: z (B, Dz) -> (B, D)."""
    cfg = dataclasses.replace(model_config, n_sources=1, latent_dim=latent_dim, variational=False)
    return VAEBSS(cfg).decoder


def project_to_sphere(z: torch.Tensor) -> torch.Tensor:
    """GLO's constraint on latent codes: each row on the unit l2 sphere. Shape: (N, Dz) -> (N, Dz)."""
    return z / z.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def glo_data(task, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The observed clean sources and the fixed training mixtures GLO learns from.

    MNIST: a seeded permutation of the training images; its first half are the observed digits
    (times the task's source scale), its second half is grouped into mixtures of ``n_digits`` digits.

    Returns:
        observed (N_B, D) and mixtures (N_Y, D), on the task's device.
    """
    if hasattr(task, "glo_data"):
        return task.glo_data(generator)
    if not hasattr(task, "train_images"):
        raise BssvaeError(f"method 'glo': the {task.name} task exposes no clean training sources (GLO observes one "
                          "source distribution); give the task a glo_data(generator) method")
    from ..data import mix, to_float

    images = task.train_images
    n = images.shape[0]
    perm = torch.randperm(n, generator=generator).to(images.device)
    half = n // 2
    m = task.n_digits
    n_mix = (n - half) // m
    if half < 1 or n_mix < 1:
        raise BssvaeError(f"method 'glo': {n} training images are too few to split into observed digits and "
                          f"mixtures of {m}")
    observed = to_float(images[perm[:half]]) * task.source_scale
    idx = perm[half:half + n_mix * m].reshape(n_mix, m)
    mixtures = mix(to_float(images[idx]) * task.source_scale)
    return observed, mixtures


def _batches(n: int, batch_size: int, generator: torch.Generator):
    perm = torch.randperm(n, generator=generator)
    bs = min(batch_size, n)
    for start in range(0, n - bs + 1, bs):
        yield perm[start:start + bs]


class PCA:
    """Principal directions of the observed sources, for GLO's code initialisation (as Bojanowski et al. advise).

    Shape: fitted on (N, D); :meth:`codes` maps (B, D) -> unit-norm (B, Dz).
    """

    def __init__(self, data: torch.Tensor, dim: int, max_rows: int = 10000):
        sample = data[:max_rows].detach().float().cpu()
        self.mean = sample.mean(dim=0, keepdim=True)
        _, _, vh = torch.linalg.svd(sample - self.mean, full_matrices=False)
        self.components = vh[:dim].T.contiguous()  # (D, Dz)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().float().cpu()
        return project_to_sphere((x - self.mean) @ self.components)


def _codes(init: torch.Tensor, device) -> nn.Embedding:
    emb = nn.Embedding(init.shape[0], init.shape[1], sparse=True)
    with torch.no_grad():
        emb.weight.copy_(init)
    return emb.to(device)


def _initial_codes(pca_b: PCA, pca_y: PCA, x: torch.Tensor, chunk: int = 10000) -> torch.Tensor:
    """(z_B, z_X) of mixtures: their projections on the observed sources' and on the training mixtures' PCA.

    Shape: x (B, D) -> (B, 2, Dz).
    """
    parts = [torch.stack([pca_b.codes(x[i:i + chunk]), pca_y.codes(x[i:i + chunk])], dim=1)
             for i in range(0, x.shape[0], chunk)]
    return torch.cat(parts)


def fit_and_separate(ctx: RunContext) -> MethodOutput:
    """Train GLO masking (two stages) on training data, then separate the test mixtures by latent optimisation."""
    from ..train import TrainingError, load_checkpoint, lr_at, save_checkpoint

    cfg, task, device, st = ctx.config, ctx.task, ctx.device, ctx.settings
    check_config(cfg)
    dz = int(st["latent_dim"])
    gen = torch.Generator().manual_seed(cfg.seed)
    observed, mixtures = glo_data(task, gen)
    g_b = make_generator(cfg.model, dz).to(device)
    g_x = make_generator(cfg.model, dz).to(device)
    if min(observed.shape[0], mixtures.shape[0], observed.shape[1]) < dz:
        raise BssvaeError(f"method 'glo': the PCA initialisation needs at least latent_dim = {dz} observed sources, "
                          f"training mixtures and values per source; got observed {tuple(observed.shape)} and "
                          f"mixtures {tuple(mixtures.shape)}")
    pca_b, pca_y = PCA(observed, dz), PCA(mixtures, dz)
    z_obs = _codes(torch.cat([pca_b.codes(observed[i:i + 10000]) for i in range(0, observed.shape[0], 10000)]),
                   device)
    z_mix = _codes(_initial_codes(pca_b, pca_y, mixtures).reshape(mixtures.shape[0], 2 * dz), device)  # (z_B, z_X)
    opt_b, opt_zb = torch.optim.Adam(g_b.parameters(), lr=cfg.lr), torch.optim.SparseAdam(z_obs.parameters(),
                                                                                          lr=st["code_lr"])
    opt_x, opt_zx = torch.optim.Adam(g_x.parameters(), lr=cfg.lr), torch.optim.SparseAdam(z_mix.parameters(),
                                                                                          lr=st["code_lr"])
    modules = {"g_b": g_b, "g_x": g_x, "z_obs": z_obs, "z_mix": z_mix, "opt_b": opt_b, "opt_zb": opt_zb,
               "opt_x": opt_x, "opt_zx": opt_zx}
    done, history, train_seconds = 0, [], 0.0
    ckpt = load_checkpoint(ctx.run_dir) if ctx.resume else None
    if ckpt is not None:
        for name, mod in modules.items():
            mod.load_state_dict(ckpt[name])
        gen.set_state(ckpt["generator"])
        torch.set_rng_state(ckpt["torch_rng"])
        done, train_seconds = int(ckpt["epoch"]), float(ckpt["train_seconds"])
        history = read_history(ctx.run_dir)[:done]
    total = 2 * cfg.epochs  # stage 1 then stage 2, cfg.epochs each
    end = total if ctx.stop_after_epochs is None else min(total, ctx.stop_after_epochs)
    amp = cfg.precision == "bf16"
    last_ckpt = time.perf_counter()
    for epoch in range(done, end):
        stage = 1 if epoch < cfg.epochs else 2
        t0 = time.perf_counter()
        data = observed if stage == 1 else mixtures
        steps = max(1, data.shape[0] // cfg.batch_size)
        s = 0
        loss_sum = torch.zeros((), device=device)
        if stage == 1:
            g_b.train()
        else:
            g_b.eval()
            g_x.train()
            g_b.requires_grad_(False)
        for s, idx in enumerate(_batches(data.shape[0], cfg.batch_size, gen)):
            lr = lr_at(cfg, (epoch % cfg.epochs) * steps + s, steps)
            scale = lr / cfg.lr
            idx = idx.to(device)
            target = data[idx]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                if stage == 1:
                    recon = g_b(z_obs(idx))
                    opts = (opt_b, opt_zb)
                else:
                    z = z_mix(idx)
                    recon = g_b(z[:, :dz]) + g_x(z[:, dz:])
                    opts = (opt_x, opt_zx)
            loss = laplace_nll(target, recon.float()).mean()
            opts[0].param_groups[0]["lr"] = lr
            opts[1].param_groups[0]["lr"] = st["code_lr"] * scale
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in opts:
                o.step()
            with torch.no_grad():  # keep the codes of this batch on the unit sphere
                emb = z_obs if stage == 1 else z_mix
                w = emb.weight[idx]
                if stage == 1:
                    emb.weight[idx] = project_to_sphere(w)
                else:
                    emb.weight[idx] = torch.cat([project_to_sphere(w[:, :dz]), project_to_sphere(w[:, dz:])], 1)
            loss_sum += loss.detach()
        mean = float(loss_sum) / (s + 1)
        if not math.isfinite(mean):
            raise TrainingError(f"{cfg.run_name}: the GLO loss became {mean} in epoch {epoch + 1}")
        train_seconds += time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "stage": "observed" if stage == 1 else "mixtures", "loss": mean,
                        "recon": mean, "kl": 0.0, "beta": 0.0, "lr": lr, "train_seconds": train_seconds})
        if epoch + 1 == end or time.perf_counter() - last_ckpt >= cfg.checkpoint_every_s:
            write_history(ctx.run_dir, history)
            save_checkpoint(ctx.run_dir, {**{k: m.state_dict() for k, m in modules.items()},
                                          "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                                          "epoch": epoch + 1, "train_seconds": train_seconds})
            last_ckpt = time.perf_counter()
    if end < total:
        return MethodOutput(None, train_seconds, end, history, completed=False)

    t0 = time.perf_counter()
    x, _ = task.test_set()
    est, final_loss = separate(g_b, g_x, x, (pca_b, pca_y), int(st["test_steps"]), float(st["test_lr"]),
                               int(st["test_chunk"]))
    test_seconds = time.perf_counter() - t0
    return MethodOutput(est, train_seconds, cfg.epochs, history, info={"glo": {
        "n_observed": int(observed.shape[0]), "n_train_mixtures": int(mixtures.shape[0]),
        "test_optimisation_seconds": test_seconds, "test_final_loss": final_loss}})


def separate(g_b: nn.Module, g_x: nn.Module, x: torch.Tensor, pcas: tuple[PCA, PCA], steps: int, lr: float,
             chunk: int = 2500) -> tuple[torch.Tensor, float]:
    """Separate mixtures by optimising their two latent codes with frozen generators, then masking.

    Args:
        g_b, g_x: the observed and unobserved generators.
        x: mixtures (B, D), on any device (moved to the generators').
        pcas: the PCAs of the observed sources and of the training mixtures, which give the
            initial z_B and z_X as in training.
        steps, lr: Adam steps and learning rate of the latent optimisation.

    Returns:
        estimates (B, 2, D) on the CPU (observed part first), and the mean final loss per mixture.
    """
    device = next(g_b.parameters()).device
    g_b.eval()
    g_x.eval()
    g_b.requires_grad_(False)
    g_x.requires_grad_(False)
    out, losses = [], []
    for start in range(0, x.shape[0], chunk):
        y = x[start:start + chunk].to(device).float()
        z = _initial_codes(*pcas, y).to(device).requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            parts = torch.stack([g_b(z[:, 0]), g_x(z[:, 1])], dim=1)
            loss = laplace_nll(y, parts.sum(dim=1))
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            with torch.no_grad():
                z.copy_(project_to_sphere(z))
        with torch.no_grad():
            parts = torch.stack([g_b(z[:, 0]), g_x(z[:, 1])], dim=1)
            losses.append(laplace_nll(y, parts.sum(dim=1)).cpu())
            out.append(vaem(parts, y).cpu())
    return torch.cat(out), float(torch.cat(losses).mean())
