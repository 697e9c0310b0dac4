"""Timing helpers: throughput windows over step iterators, and time-budgeted runs evaluated at marks.

A *trainer* is any object with a ``model`` and a ``steps()`` iterator whose ``next()`` runs one
training step and returns the number of mixtures it consumed (:class:`bench.ours.OursTrainer`,
:class:`bench.authors.AuthorsTrainer`). Only the time spent inside ``next()`` counts as training
time; evaluation runs with the clock stopped.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Callable, Iterator

import torch

from bssvae.masks import vaem
from bssvae.metrics import PSNR_CAP, match_sources


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that a clock read afterwards includes it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def throughput_window(steps: Iterator[int], seconds: float, device: torch.device, min_steps: int = 3) -> float:
    """Mixtures per second of a step iterator over a window of at least ``seconds`` and ``min_steps``."""
    sync(device)
    t0 = time.perf_counter()
    mixtures = n_steps = 0
    while True:
        mixtures += next(steps)
        n_steps += 1
        if n_steps >= min_steps and (n_steps % 4 == 0 or torch.device(device).type != "cuda"):
            sync(device)
            if time.perf_counter() - t0 >= seconds:
                break
    return mixtures / (time.perf_counter() - t0)


def batch_psnr(estimates: torch.Tensor, sources: torch.Tensor, source_scale: float = 0.5) -> dict[str, float]:
    """Mean PSNR of matched estimates, in both columns, as :func:`bssvae.metrics.evaluate_images`.

    The same matching (:func:`bssvae.metrics.match_sources`) and the same per-image PSNR (data
    range 1, capped at ``PSNR_CAP``), vectorised and without SSIM, so that evaluating the 5,000
    test mixtures during a run takes about a second. ``psnr`` is our column (digit scale),
    ``psnr_halved`` the halved-scale one.

    Shape: estimates (B, K, D), sources (B, M, D).
    """
    match = match_sources(estimates, sources)
    ref = sources.detach().cpu().double()
    est = match.matched.double()
    out = {}
    for name, up in (("psnr", 1.0 / source_scale), ("psnr_halved", 1.0)):
        mse = ((ref * up - est * up) ** 2).mean(dim=-1)
        with torch.no_grad():
            p = 10.0 * torch.log10(1.0 / mse.clamp_min(1e-300))
        p = torch.where(mse == 0, torch.full_like(p, PSNR_CAP), p.clamp_max(PSNR_CAP))
        out[name] = float(p.mean())
    return out


def make_evaluator(x: torch.Tensor, s: torch.Tensor, source_scale: float = 0.5) -> Callable[[torch.nn.Module], dict]:
    """A function scoring a model on a test set: PSNR of the decoded (``vae``) and masked (``vaem``) sources."""

    def evaluate(model) -> dict:
        t0 = time.perf_counter()
        s_hat = model.separate(x, mask=False)
        scores = {}
        for method, est in (("vae", s_hat), ("vaem", vaem(s_hat, x.detach().cpu()))):
            for k, v in batch_psnr(est, s, source_scale).items():
                scores[f"{method}_{k}"] = round(v, 4)
        scores["eval_seconds"] = round(time.perf_counter() - t0, 3)
        return scores

    return evaluate


def timed_run(trainer, budget_s: float, eval_points_s: list[float], evaluate: Callable, device: torch.device,
              label: str = "", sync_every: int = 16, log=sys.stderr) -> dict:
    """Train until ``budget_s`` seconds of training time, evaluating at each point (clock stopped).

    Args:
        trainer: a trainer (see the module docstring).
        budget_s: training seconds; the run stops at the first step that reaches it.
        eval_points_s: training times at which to evaluate (the budget is always one); each is
            evaluated at the first step that reaches it, and the training time actually reached is
            recorded beside the target.
        evaluate: ``evaluate(model) -> dict`` of scores.
        device: for synchronisation on a GPU.

    Returns:
        ``{"curve": [{"target_s", "train_seconds", "epoch", "mixtures", **scores}], "finished",
        "train_seconds", "mixtures", "epochs_done"}``; ``finished`` is True when the trainer ran
        out of epochs before the budget (later points then repeat the final model's scores).
    """
    points = sorted({round(p, 6) for p in eval_points_s if 0 < p < budget_s} | {float(budget_s)})
    steps = trainer.steps()
    clock, mixtures, n_steps, k = 0.0, 0, 0, 0
    curve = [{"target_s": 0.0, "train_seconds": 0.0, "epoch": 0.0, "mixtures": 0, **evaluate(trainer.model)}]
    finished = False
    gpu = torch.device(device).type == "cuda"
    while k < len(points):
        t0 = time.perf_counter()
        try:
            mixtures += next(steps)
        except StopIteration:
            finished = True
        n_steps += 1
        if gpu and (n_steps % sync_every == 0 or finished):
            sync(device)
        clock += time.perf_counter() - t0
        if finished or (clock >= points[k] and (not gpu or n_steps % sync_every == 0)):
            scores = evaluate(trainer.model)
            epoch = mixtures / trainer.mixtures_per_epoch
            while k < len(points) and (finished or clock >= points[k]):
                curve.append({"target_s": points[k], "train_seconds": round(clock, 3), "epoch": round(epoch, 3),
                              "mixtures": mixtures, **scores})
                k += 1
            if log is not None:
                print(f"  [{label}] {clock / 60:6.2f} min  epoch {epoch:7.2f}  VAEM PSNR "
                      f"{scores['vaem_psnr']:6.2f} dB (halved {scores['vaem_psnr_halved']:6.2f})"
                      + ("  (finished its epochs)" if finished else ""), file=log, flush=True)
    return {"curve": curve, "finished": finished, "train_seconds": round(clock, 3), "mixtures": mixtures,
            "epochs_done": round(mixtures / trainer.mixtures_per_epoch, 3)}


def score_at(curve: list[dict], target_s: float, key: str = "vaem_psnr") -> float | None:
    """The score recorded for an evaluation point (None if the run had no such point)."""
    for row in curve:
        if math.isclose(row["target_s"], target_s, rel_tol=0, abs_tol=1e-6):
            return row[key]
    return None


def minutes_to(curve: list[dict], threshold: float, key: str = "vaem_psnr") -> float | None:
    """Training minutes at the first evaluation after training started reaching ``threshold`` (None if never).

    The untrained model's score (the row before any mixture) does not count: a threshold it already
    meets says nothing about training (e.g. a recipe whose later scores fall below the starting point).
    """
    for row in curve:
        if row["mixtures"] > 0 and row[key] >= threshold:
            return round(row["train_seconds"] / 60.0, 3)
    return None
