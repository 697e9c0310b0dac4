"""What every baseline run shares: the run directory, evaluation on the task's test set, results rows.

A baseline module provides ``fit_and_separate(ctx: RunContext) -> MethodOutput``: it fits the
method on training data only (or, for oracles, reads the true test sources) and returns its
estimates of the task's fixed test mixtures. :func:`run_method` does the rest exactly as
:func:`bssvae.train.train` does for the VAE, so every row of a results table is computed the same way.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import BssvaeError, RunDirError
from ..results import (append_rows, atomic_write_json, provenance, read_history, results_dir, run_dir_label,
                       write_history)

N_EXAMPLES = 12


@dataclass
class RunContext:
    """What a baseline gets to fit and separate.

    Attributes:
        config: the run's :class:`bssvae.config.TrainConfig`.
        task: the data task (training batches, fixed test set, evaluation).
        run_dir: the run directory (checkpoints go here).
        device: the torch device to train on.
        settings: the method's settings (:func:`bssvae.baselines.method_settings`).
        resume: continue from the run directory's checkpoint, if any.
        progress: show progress bars.
        stop_after_epochs: stop training after this many epochs in total (testing interruption).
    """

    config: Any
    task: Any
    run_dir: Path
    device: torch.device
    settings: dict
    resume: bool = True
    progress: bool = False
    stop_after_epochs: int | None = None


@dataclass
class MethodOutput:
    """A baseline's result on the test set.

    Shape: estimates (B, K, D) on the CPU, B = the task's test mixtures (None if not completed).
    """

    estimates: torch.Tensor | None
    train_seconds: float = 0.0
    epochs: int = 0
    history: list[dict] = field(default_factory=list)
    completed: bool = True
    device: str | None = None  # where it ran, when not the run's device (e.g. scikit-learn on the CPU)
    info: dict = field(default_factory=dict)  # recorded in metrics.json


def _normalised(settings: dict) -> dict:
    """Settings as they read back from JSON (tuples become lists), so recorded and asked-for compare equal."""
    return json.loads(json.dumps(settings))


def settings_differences(settings: dict, run_dir: Path) -> list[str]:
    """The method settings in which ``settings`` differs from those the run in ``run_dir`` recorded
    (``settings.json``, written when it started, or a finished run's ``metrics.json``); [] if none recorded."""
    from ..train import read_finished

    path = Path(run_dir) / "settings.json"
    if path.exists():
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise RunDirError(f"{path}: unreadable ({e}); use --restart to train the run again") from e
    else:
        recorded = (read_finished(run_dir) or {}).get("settings")
    if not isinstance(recorded, dict):
        return []
    wanted = _normalised(settings)
    return sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))


def _check_settings(settings: dict, run_dir: Path) -> None:
    diff = settings_differences(settings, run_dir)
    if diff:
        raise RunDirError(f"{run_dir} holds a run with other method settings (differs in {diff}); use --restart "
                          "(resume=False) to train it again with these, or another run directory")


def resolve_settings(config, settings: dict | None = None) -> dict:
    """The method's settings for the run's profile and task, with ``settings`` overriding them."""
    from . import method_settings

    base = method_settings(config.method, config.profile, config.task)
    unknown = sorted(set(settings or {}) - set(base))
    if unknown:
        raise BssvaeError(f"settings: unknown keys {unknown} for method {config.method!r}; known: {sorted(base)}")
    return {**base, **(settings or {})}


def run_method(config, fit_and_separate: Callable[[RunContext], MethodOutput], run_dir=None, task=None,
               write_results: bool = True, resume: bool = True, progress: bool = False,
               stop_after_epochs: int | None = None, settings: dict | None = None) -> dict[str, Any]:
    """Fit, separate, evaluate and record one baseline run (see :func:`bssvae.baselines.run_baseline`)."""
    from ..train import check_run_dir, clear_run_outputs, default_run_dir, read_finished, start_run, write_npz
    from . import ORACLE_METHODS

    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    settings = resolve_settings(config, settings)
    if not resume:
        clear_run_outputs(config, run_dir)
    done = read_finished(run_dir)
    if done is not None:
        check_run_dir(config, run_dir)  # refuses a directory holding another configuration
        _check_settings(settings, run_dir)
        if write_results:  # idempotent: re-adds rows lost if a run stopped between its two writes
            append_rows(results_dir(config.profile) / f"{config.task}.csv", done["rows"])
        return {"run_dir": run_dir, "rows": done["rows"], "history": read_history(run_dir), "completed": True}
    if config.method in ORACLE_METHODS and config.n_sources != config.n_digits:
        raise BssvaeError(f"n_sources: the {config.method} oracle uses the M = {config.n_digits} true sources, so "
                          f"K must equal M; got K = {config.n_sources} (its rows have n_sources = M)")
    device, task, wall0, commit = start_run(config, run_dir, task)
    _check_settings(settings, run_dir)  # a checkpoint resumes only under the settings it was made with
    atomic_write_json(run_dir / "settings.json", _normalised(settings))
    ctx = RunContext(config, task, run_dir, device, settings, resume, progress, stop_after_epochs)
    out = fit_and_separate(ctx)
    if out.history:
        write_history(run_dir, out.history)
    if not out.completed:
        return {"run_dir": run_dir, "rows": [], "history": out.history, "completed": False}

    x, s = task.test_set()
    est = out.estimates.detach().float().cpu()
    if est.ndim != 3 or est.shape[0] != x.shape[0] or est.shape[2] != x.shape[1]:
        raise BssvaeError(f"{config.method}: expected estimates of shape (B, K, D) = ({x.shape[0]}, K, {x.shape[1]}), "
                          f"got {tuple(est.shape)}")
    t_eval = time.perf_counter()
    scores = task.evaluate(est)
    eval_seconds = time.perf_counter() - t_eval
    ran_on = out.device or str(device)
    row = {"method": config.method, "n_sources": config.n_sources, "n_digits": config.n_digits,
           "seed": config.seed, "epochs": int(out.epochs), **scores.summary(),
           "train_seconds": round(float(out.train_seconds), 2), "device": ran_on, "run_dir": run_dir_label(run_dir)}
    rows = [row]
    n = min(getattr(task, "n_examples", N_EXAMPLES), x.shape[0])
    examples = {"x": x[:n].detach().cpu().numpy(), "s": s[:n].detach().cpu().numpy(), config.method: est[:n].numpy()}
    write_npz(run_dir / "examples.npz", {k: v.astype(np.float16) for k, v in examples.items()})
    if getattr(task, "examples", None) is not None:  # waveforms to listen to (book/audio/figure3)
        write_npz(run_dir / "audio_examples.npz", task.examples({config.method: est}, n=4))
    atomic_write_json(run_dir / "provenance.json", provenance(
        ran_on, config=config.to_dict(), seed=config.seed, method_settings=settings,
        train_seconds=out.train_seconds, eval_seconds=eval_seconds,
        wall_seconds_this_session=time.perf_counter() - wall0, commit=commit))
    # metrics.json last: it marks the run finished, so nothing of the run may be missing once it exists
    atomic_write_json(run_dir / "metrics.json", {"rows": rows, "eval_seconds": eval_seconds, "settings": settings,
                                                 **out.info})
    if write_results:
        append_rows(results_dir(config.profile) / f"{task.name}.csv", rows)
    return {"run_dir": run_dir, "rows": rows, "history": out.history, "completed": True}


def training_mixtures(task, generator: torch.Generator, n: int, batch_size: int = 1000) -> torch.Tensor:
    """At least ``min(n, one epoch)`` training mixtures drawn through ``task.epoch_batches``.

    The mixtures are those a VAE epoch would see (same pairing rule, same scaling), taken from as
    many epochs as needed to reach ``n``, and returned on the CPU.

    Shape: -> (min(n, ...), D).
    """
    out, have = [], 0
    while have < n:
        before = have
        for xb in task.epoch_batches(generator, min(batch_size, max(1, task.mixtures_per_epoch))):
            out.append(xb.detach().float().cpu())
            have += xb.shape[0]
            if have >= n:
                break
        if have == before:
            raise BssvaeError(f"{task.name}: the task yielded no training mixtures")
    return torch.cat(out)[:n]
