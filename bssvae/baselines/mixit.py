"""MixIT baseline: mixture invariant training (Wisdom et al., NeurIPS 2020, arXiv 2006.12701).

MixIT learns to separate from mixtures alone. Two training mixtures x1 and x2 are added into a
*mixture of mixtures* (MoM) x1 + x2; the network separates the MoM into K estimates s_hat_k; the
loss remixes the estimates into two mixtures, each estimate assigned to exactly one of x1, x2, and
keeps the best of the 2^K assignments (the paper's Eq. 2):

    L_MixIT = min_{A in {0,1}^{2 x K}, each column one-hot}  sum_j L(x_j, sum_k A_jk s_hat_k).

At test time the network separates an ordinary mixture into its K estimates.

Our choices (the paper under reproduction gives none):

- **Loss L**: the VAE's Laplace negative log-likelihood, sum_i |x_i - x_hat_i| / b
  (:func:`bssvae.losses.laplace_nll`), so that MixIT and VAE-BSS differ in the training principle
  and not in the loss family; Wisdom et al. use a thresholded negative SNR on waveforms, which
  suits signed waveforms rather than non-negative images and magnitude spectrograms.
- **Network**: the AE's network at the run's sizes (Table I's: for MNIST the encoder
  784-700-600-500-400-300 with BatchNorm and ReLU to K codes of 20 dimensions and the shared
  decoder 20-300-...-700-784 per source; for audio 32768-2560-2048-1536-1024-512 to K codes of 64
  dimensions, decoder mirrored), with the final sigmoid replaced by a softmax over the K sources: the decoder outputs K masks that sum to one,
  applied to the input. Mask-based separation with estimates that add up to the input is what
  Wisdom et al.'s TDCN++ does (masks and a mixture-consistency projection); it also makes MixIT's
  test estimates directly comparable with VAEM's, which add up to the mixture too.
- **Input level**: the network sees its input divided by the input's mean value
  (``input_norm``); the masks are applied to the unscaled input. A MoM holds twice the intensity
  of a test mixture; TDCN++ normalises each example (global layer norm), and without a per-example
  normalisation BatchNorm's running statistics, gathered on MoMs, would not fit test mixtures.
- **Data**: each training batch of 2B mixtures from ``task.epoch_batches`` (re-paired every epoch,
  as for the VAE) is split into halves x1, x2. For MNIST one epoch uses every training image once
  (up to the dropped remainder of a batch). For audio an epoch draws only ``len(train notes) // 2``
  mixtures (151 at the paper's size) and drops the remainder of a batch: with batch 64, one step of
  128 mixtures (64 MoMs) per epoch, 23 of the 151 unused.
- **Mixtures of mixtures are added in the task's input domain.** x1 and x2 are what the VAE
  trains on: for audio, magnitude spectrograms, each divided by its own peak
  (:func:`bssvae.audio.task.normalize_by_mixture`). So an audio MoM is a sum of two magnitude
  spectrograms at equal peaks, not, as in Wisdom et al., the spectrogram of the sum of two
  waveforms at their natural levels: magnitudes of a waveform sum differ from the sum of
  magnitudes wherever partials share a bin (by 8.8 % of the MoM's total magnitude on average,
  ``results/ablations/audio-test-intervals``), and the natural level ratio of the two mixtures
  (median 2.5 dB apart) is set to 0 dB. A waveform-domain MoM would need the waveforms of the
  training mixtures, which ``task.epoch_batches`` does not return; the committed runs used the
  magnitude-domain MoM.
- **Loss assignment** is implemented here (it is short) rather than with asteroid's
  ``MixITLossWrapper``: ``pip install asteroid`` would pull pytorch-lightning, torchaudio 2.11
  (built for another torch), pesq, huggingface_hub and about 30 other packages into the environment.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import BssvaeError, check_tensor
from ..losses import laplace_nll
from ..model import VAEBSS
from ..results import read_history, write_history
from .common import MethodOutput, RunContext


@dataclass
class MixITLoss:
    """Per-example MixIT losses and the best assignment.

    Shapes: loss (B,); assignment (B, K), the reference mixture (0..J-1) each estimate is assigned to.
    """

    loss: torch.Tensor
    assignment: torch.Tensor


def assignment_matrices(n_sources: int, n_mixtures: int = 2, device=None) -> torch.Tensor:
    """All J^K ways to assign K estimates to J mixtures, as 0/1 matrices.

    Shape: -> (J^K, J, K); entry [a, j, k] = 1 when estimate k goes to mixture j in assignment a.
    """
    combos = torch.tensor(list(itertools.product(range(n_mixtures), repeat=n_sources)), device=device)
    return nn.functional.one_hot(combos, n_mixtures).permute(0, 2, 1).float()


def mixit_loss(estimates: torch.Tensor, mixtures: torch.Tensor, loss_fn=laplace_nll) -> MixITLoss:
    """Mixture invariant training loss (Wisdom et al. 2020, Eq. 2): the best assignment of estimates to mixtures.

    Args:
        estimates: s_hat (B, K, D), the separation of the mixtures' sum.
        mixtures: the reference mixtures (B, J, D) (J = 2 in MixIT).
        loss_fn: ``loss_fn(reference, remix)`` over the last dimension (default: Laplace NLL).

    Returns:
        :class:`MixITLoss` with per-example losses (B,) and best assignments (B, K).
    """
    if estimates.ndim != 3 or mixtures.ndim != 3 or estimates.shape[0] != mixtures.shape[0] \
            or estimates.shape[2] != mixtures.shape[2]:
        raise BssvaeError(f"estimates and mixtures: expected shapes (B, K, D) and (B, J, D), got "
                          f"{tuple(estimates.shape)} and {tuple(mixtures.shape)}")
    k, j = estimates.shape[1], mixtures.shape[1]
    a = assignment_matrices(k, j, estimates.device).to(estimates.dtype)  # (A, J, K)
    remix = torch.einsum("ajk,bkd->bajd", a, estimates)  # (B, A, J, D)
    per = loss_fn(mixtures.unsqueeze(1).expand_as(remix), remix).sum(dim=-1)  # (B, A)
    loss, best = per.min(dim=1)
    assignment = a[best].argmax(dim=1)  # (B, J, K) -> (B, K)
    return MixITLoss(loss, assignment)


class MixITSeparator(nn.Module):
    """The AE's network (Table I sizes) producing K softmax masks applied to the input.

    Shape: x (B, D) -> s_hat (B, K, D), with sum_k s_hat_k = x.
    """

    def __init__(self, model_config, input_norm: bool = True):
        super().__init__()
        self.net = VAEBSS(dataclasses.replace(model_config, variational=False))
        self.net.decoder[-1] = nn.Identity()  # logits instead of a sigmoid: the masks come from a softmax
        self.input_norm = input_norm

    @property
    def n_sources(self) -> int:
        return self.net.n_sources

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp = x / x.mean(dim=1, keepdim=True).clamp_min(1e-6) if self.input_norm else x
        logits = self.net(inp).s_hat.float()
        return torch.softmax(logits, dim=1) * x.unsqueeze(1).float()

    @torch.no_grad()
    def separate(self, x, batch_size: int = 1000) -> torch.Tensor:
        """Separate mixtures in evaluation mode. Shape: x (B, D) -> (B, K, D) on the CPU."""
        x = check_tensor("x", x, ndim=2, min_value=0.0)
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        out = [self(x[i:i + batch_size].to(device)).cpu() for i in range(0, x.shape[0], batch_size)]
        self.train(was)
        return torch.cat(out)


def fit_and_separate(ctx: RunContext) -> MethodOutput:
    """Train MixIT on mixtures of training mixtures, then separate the test mixtures."""
    from ..train import TrainingError, load_checkpoint, lr_at, save_checkpoint

    cfg, task, device = ctx.config, ctx.task, ctx.device
    gen = torch.Generator().manual_seed(cfg.seed)
    model = MixITSeparator(cfg.model, ctx.settings.get("input_norm", True)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = max(1, task.mixtures_per_epoch // (2 * cfg.batch_size))
    start, history, train_seconds = 0, [], 0.0
    ckpt = load_checkpoint(ctx.run_dir) if ctx.resume else None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["generator"])
        torch.set_rng_state(ckpt["torch_rng"])
        start, train_seconds = int(ckpt["epoch"]), float(ckpt["train_seconds"])
        history = read_history(ctx.run_dir)[:start]
    end = cfg.epochs if ctx.stop_after_epochs is None else min(cfg.epochs, ctx.stop_after_epochs)
    amp = cfg.precision == "bf16"
    last_ckpt = time.perf_counter()
    lr = cfg.lr
    for epoch in range(start, end):
        t0 = time.perf_counter()
        model.train()
        total, n_batches = torch.zeros((), device=device), 0
        for i, xb in enumerate(task.epoch_batches(gen, 2 * cfg.batch_size)):
            half = xb.shape[0] // 2
            if half == 0:
                continue
            refs = torch.stack([xb[:half], xb[half:2 * half]], dim=1)  # (B, 2, D)
            lr = lr_at(cfg, epoch * steps_per_epoch + i, steps_per_epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                s_hat = model(refs.sum(dim=1))
            loss = mixit_loss(s_hat.float(), refs).loss.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
            n_batches += 1
        mean = float(total) / max(1, n_batches)
        if not math.isfinite(mean):
            raise TrainingError(f"{cfg.run_name}: the MixIT loss became {mean} in epoch {epoch + 1}")
        train_seconds += time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "stage": "mixit", "loss": mean, "recon": mean, "kl": 0.0, "beta": 0.0,
                        "lr": lr, "train_seconds": train_seconds})
        if epoch + 1 == end or time.perf_counter() - last_ckpt >= cfg.checkpoint_every_s:
            write_history(ctx.run_dir, history)
            save_checkpoint(ctx.run_dir, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                          "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                                          "epoch": epoch + 1, "train_seconds": train_seconds})
            last_ckpt = time.perf_counter()
    if end < cfg.epochs:
        return MethodOutput(None, train_seconds, end, history, completed=False)
    x, _ = task.test_set()
    est = model.separate(x)
    return MethodOutput(est, train_seconds, cfg.epochs, history, info={"mixit": {
        "steps_per_epoch": steps_per_epoch, "mixtures_of_mixtures_per_epoch": steps_per_epoch * cfg.batch_size,
        "input_norm": model.input_norm}})
