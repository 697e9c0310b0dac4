"""Training and evaluation of VAE-BSS and the AE, with run directories that survive interruption.

A run directory holds everything about one run::

    config.json        the TrainConfig (and the run-directory format version)
    checkpoint-N.pt    training state after epoch N, loaded weights-only (no code runs)
    checkpoint.json    names the current checkpoint and its sha256: a corrupt one is detected
    history.csv        loss, reconstruction, KL, beta, learning rate and seconds per epoch
    model.safetensors  final weights (safetensors: loading runs no code), with the sha256 of its tensors
                       in its metadata: a damaged file is detected
    examples.npz       a few test mixtures with their true and estimated sources (for figures)
    provenance.json    command, seed, commit, package versions, hardware, wall time
    metrics.json       test scores of each method row (vae and vaem, or ae); written last, so it
                       means the run is finished

Killing a run at any moment loses at most the epochs since its last checkpoint: run it again
with the same directory and it resumes, reaching the same final weights as an uninterrupted run.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as save_safetensors

from . import RUN_FORMAT_VERSION, __version__
from .config import DECAYING_SCHEDULES, PRECISION_RECIPES, TrainConfig, check_device_name
from .errors import BssvaeError, RunDirError, check_int
from .losses import beta_at, negative_elbo
from .masks import vaem
from .model import VAEBSS
from .optim import group_lr
from .results import (append_rows, atomic_write_bytes, atomic_write_json, cpu_bf16_speedup, cpu_vector_flags,
                      git_commit, has_native_bf16, provenance, read_history, results_dir, run_dir_label, write_history)

N_EXAMPLES = 12
# Fields that may differ when a run is resumed elsewhere without changing its result.
_RESUME_FREE = {"device", "checkpoint_every_s", "compile"}


class TrainingError(BssvaeError):
    """Training could not continue (for example, the loss became NaN)."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks the GPU when one is present, else the CPU."""
    if check_device_name(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BssvaeError(f"device: {name!r} was asked for but no CUDA GPU is available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise BssvaeError(f"device: {name!r} was asked for but there are {torch.cuda.device_count()} GPUs "
                          f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return dev


def configure_threads() -> None:
    """Use every core for intra-op parallelism (PyTorch may default to fewer in containers), or the
    ``BSSVAE_THREADS`` environment variable's number of threads when it is set (0: every core).
    Raises the error of an unknown ``BSSVAE_OMP_WAIT`` (:mod:`bssvae.openmp`), found at import."""
    from . import openmp

    openmp.check()
    n = openmp.available_cores()
    text = os.environ.get("BSSVAE_THREADS", "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            value = text  # refused by check_int, which names the variable and the value
        n = check_int("BSSVAE_THREADS", value, minimum=0) or n
    torch.set_num_threads(n)


#: ``precision="auto"`` trains in bf16 on a CPU only where a bf16 step measured at least this many times
#: faster than a float32 one (:func:`bssvae.results.cpu_bf16_speedup`). The whole step at batch 512,
#: bf16 against fp32 (results/bench.json): 2.38x on the 2-core AMD EPYC with AVX512-BF16, 1.56x on the
#: Intel Xeon with AMX, 0.72x on the same Xeon whose virtual machine hides AMX (its probe, on two
#: threads then: 0.65x). The threshold sits near the geometric middle of the last two, so that noise
#: does not flip the choice.
BF16_MIN_SPEEDUP = 1.1


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AMX or AVX512-BF16 in /proc/cpuinfo's flags)."""
    return has_native_bf16(cpu_vector_flags())


def cpu_prefers_bf16() -> bool:
    """Whether this CPU trains faster in bf16: it has bf16 instructions, and a bf16 step measured at
    least :data:`BF16_MIN_SPEEDUP` times faster than a float32 one (a CPU without them is not timed:
    an AVX2 CPU ran a bf16 step 11-17x slower)."""
    return cpu_has_native_bf16() and cpu_bf16_speedup() >= BF16_MIN_SPEEDUP


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where the device trains faster in it (a bf16 GPU; a CPU by
    :func:`cpu_prefers_bf16`), else ``fp32``."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_prefers_bf16() else "fp32"


def make_optimizer(model: torch.nn.Module, config: TrainConfig, adam_kwargs: dict | None = None):
    """The run's optimizer (``config.optimizer``, :mod:`bssvae.optim`): Adam by default (the authors'),
    fused into one kernel where PyTorch has one (+9-12% on CPU); ``adam_kwargs``, if given, build that Adam
    (with Muon, the Adam beside it) instead, for the benchmark's variants of the step."""
    from .optim import make_optimizer as build

    return build(model, config.optimizer, config.lr, config.muon_layers, config.muon_ns_steps, config.muon_momentum,
                 adam_kwargs, config.muon_lr_scale, config.muon_weight_decay)


def default_run_dir(config: TrainConfig) -> Path:
    return results_dir(config.profile) / "runs" / config.run_name


def build_task(config: TrainConfig, device: torch.device):
    """The data task named by ``config.task`` (MNIST here; audio in :mod:`bssvae.audio`)."""
    if config.task == "mnist":
        from .data import MnistTask

        return MnistTask.build(config.n_digits, config.n_test, config.test_seed, device, config.max_train_images)
    from .audio import AudioTask  # noqa: WPS433 (optional heavy import)

    return AudioTask.build(config, device)


def budget_fraction(config: TrainConfig, elapsed_s: float) -> float:
    """The fraction of the run's training-time budget spent after ``elapsed_s`` training seconds
    (0 for a run without ``budget_minutes``)."""
    return 0.0 if config.budget_minutes is None else elapsed_s / (60.0 * config.budget_minutes)


def budget_spent(config: TrainConfig, elapsed_s: float) -> bool:
    """Whether a run with ``budget_minutes`` has used it up: it stops before its next step."""
    return config.budget_minutes is not None and budget_fraction(config, elapsed_s) >= 1.0


def lr_at(config: TrainConfig, step: int, steps_per_epoch: int, elapsed_s: float = 0.0) -> float:
    """Learning rate at a step: linear warm-up, then the configured schedule.

    A cosine, linear or wsd schedule decays from the peak ``lr`` to zero over the steps after the warm-up (wsd holds
    the peak until the last ``config.wsd_decay_fraction`` of them, by default
    :data:`~bssvae.config.WSD_DECAY_FRACTION`).
    With ``budget_minutes``, its progress is the larger of the fraction of steps done and the fraction
    of the budget spent (``elapsed_s`` training seconds), so that it ends at zero when the run ends,
    at the budget or at its last epoch, whichever comes first.
    """
    epoch = step / steps_per_epoch
    total = config.epochs * steps_per_epoch
    warm = config.lr_warmup_epochs * steps_per_epoch
    if warm > 0 and step < warm:
        return config.lr * (step + 1) / warm
    if config.lr_schedule == "exponential":  # authors: lr x 0.9998 after each epoch
        return config.lr * config.lr_decay ** math.floor(epoch)
    if config.lr_schedule in DECAYING_SCHEDULES:
        progress = min(1.0, max((step - warm) / max(1.0, total - warm), budget_fraction(config, elapsed_s)))
        if config.lr_schedule == "linear":
            return config.lr * (1.0 - progress)
        if config.lr_schedule == "wsd":
            return config.lr * min(1.0, (1.0 - progress) / config.wsd_decay_fraction)
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.lr


# --------------------------------------------------------------------------------------------
# Checkpoints


def _state_bytes(obj: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


#: The checkpoints of a run directory (:func:`checkpoint_name`).
CHECKPOINT_GLOB = "checkpoint-*.pt"


def checkpoint_name(epoch: int) -> str:
    """The file name of the checkpoint written after ``epoch`` epochs (one of :data:`CHECKPOINT_GLOB`)."""
    return f"checkpoint-{epoch:06d}.pt"


def save_checkpoint(run_dir: Path, state: dict) -> None:
    """Write the training state as a new generation file, then switch the pointer to it.

    ``checkpoint.json`` (written atomically) names the current generation and its sha256; it is the
    commit point. A kill at any moment leaves either the old pointer with its intact file or the new
    one, never a pointer to a partial file. Older generations are deleted after the switch.
    """
    data = _state_bytes(state)
    name = checkpoint_name(int(state["epoch"]))
    atomic_write_bytes(run_dir / name, data)
    atomic_write_json(run_dir / "checkpoint.json", {"file": name, "sha256": hashlib.sha256(data).hexdigest(),
                                                    "epoch": int(state["epoch"])})
    for old in run_dir.glob(CHECKPOINT_GLOB):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_checkpoint(run_dir: Path) -> dict | None:
    """Load the current checkpoint without executing code (``weights_only``), after checking its hash.

    Returns None when there is none. Raises RunDirError for a corrupt, truncated or foreign one.
    """
    pointer = Path(run_dir) / "checkpoint.json"
    if not pointer.exists():
        return None
    try:
        meta = json.loads(pointer.read_text())
        path = Path(run_dir) / meta["file"]
        expected = meta["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{pointer}: unreadable checkpoint pointer ({e})") from e
    if path.parent != Path(run_dir) or not path.exists():
        raise RunDirError(f"{pointer}: names {meta.get('file')!r}, which is not in {run_dir}")
    data = path.read_bytes()
    if expected != hashlib.sha256(data).hexdigest():
        raise RunDirError(f"{path}: checkpoint is corrupt or truncated (its sha256 does not match "
                          f"{pointer.name}); delete both to restart the run from scratch")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # an unpickling error means a foreign or tampered file
        raise RunDirError(f"{path}: not a loadable bssvae checkpoint ({type(e).__name__}: {e})") from e


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    """The sha256 of a model's tensors: their names, dtypes, shapes and bytes, in name order.

    ``model.safetensors`` records it in its metadata when it is written (a file cannot hold its own
    hash), so changed bytes anywhere in its tensors, or in the header that says how to read them, are
    detected when it is loaded.
    """
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def save_weights(path: Path, model: torch.nn.Module, config: TrainConfig) -> None:
    """Write a model's final weights atomically as safetensors, with its config and :func:`tensors_sha256`."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save_safetensors(state, metadata={"config": config.to_json(),
                                                               "tensors_sha256": tensors_sha256(state)}))


def _check_finite(source: Path, state: dict[str, torch.Tensor]) -> None:
    """Refuse weights with NaN or inf values: decoded, they give NaN sources that no mask can split."""
    bad = [k for k, t in state.items() if torch.is_tensor(t) and t.is_floating_point() and not bool(t.isfinite().all())]
    if bad:
        raise RunDirError(f"{source}: weights hold NaN or inf values (in {', '.join(sorted(bad)[:3])}"
                          f"{', ...' if len(bad) > 3 else ''}); the file is damaged")


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read ``model.safetensors`` (no code runs), checking its tensors against the sha256 recorded when it
    was written (files written before bssvae recorded one are taken as they are) and that they are finite."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own errors for a damaged header or a short file
        raise RunDirError(f"{path}: corrupt or unreadable weights ({e})") from e
    expected = meta.get("tensors_sha256")
    if expected is not None and expected != tensors_sha256(state):
        way = (" (delete it, and the run's final checkpoint is loaded instead)"
               if (path.parent / "checkpoint.json").exists() else "")
        raise RunDirError(f"{path}: weights are corrupt: the sha256 of their tensors does not match the one recorded "
                          f"when they were written{way}; copy the file again from where the run trained, or train "
                          "the run again with --restart")
    _check_finite(path, state)
    return state


# --------------------------------------------------------------------------------------------
# Run directories


def read_run_config(run_dir: Path) -> TrainConfig:
    """The config of a run directory, refusing other formats and unreadable files."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} " + ("is a file, not a directory" if run_dir.exists()
                                                        else "does not exist"))
    if not path.exists():
        raise RunDirError(f"{run_dir} is not a bssvae run directory (no config.json)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:  # ValueError: not JSON, or bytes that are not UTF-8 text
        raise RunDirError(f"{path}: unreadable ({type(e).__name__}: {e})") from e
    if not isinstance(meta, dict) or meta.get("format_version") != RUN_FORMAT_VERSION:
        got = meta.get("format_version") if isinstance(meta, dict) else None
        raise RunDirError(f"{run_dir}: run-directory format {got!r} is not the supported "
                          f"{RUN_FORMAT_VERSION} (written by another bssvae version)")
    if not isinstance(meta.get("config"), dict):
        raise RunDirError(f"{path}: has no 'config' mapping; not a bssvae run directory")
    try:
        return TrainConfig.from_dict(meta["config"])
    except BssvaeError as e:
        raise RunDirError(f"{path}: invalid run configuration ({e})") from e
    except (TypeError, AttributeError) as e:  # a value of a type no check foresaw
        raise RunDirError(f"{path}: invalid run configuration ({type(e).__name__}: {e})") from e


def config_differences(config: TrainConfig, run_dir: Path) -> list[str]:
    """The settings in which ``config`` differs from the run stored in ``run_dir`` (those that matter
    to the result: the device, checkpoint interval and compilation may change on resume)."""
    existing = read_run_config(run_dir)
    a = {k: v for k, v in existing.to_dict().items() if k not in _RESUME_FREE}
    b = {k: v for k, v in config.to_dict().items() if k not in _RESUME_FREE}
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


#: What a run writes besides config.json; a restart removes all of it (and checkpoint-*.pt) first.
RUN_OUTPUTS = ("metrics.json", "provenance.json", "model.safetensors", "examples.npz", "audio_examples.npz",
               "checkpoint.json", "history.csv", "settings.json")


def clear_run_outputs(config: TrainConfig, run_dir: Path) -> None:
    """Start ``run_dir`` over for ``config``: the previous result must not outlive an interrupted restart.

    Refuses (before deleting anything) a directory that holds another configuration. Writes no config.json:
    :func:`start_run` claims the directory once the task is checked.
    """
    check_run_dir(config, run_dir)
    for name in run_outputs(run_dir):
        (Path(run_dir) / name).unlink(missing_ok=True)


def read_finished(run_dir: Path) -> dict | None:
    """The ``metrics.json`` of a finished run (written last, so its presence means finished), else None."""
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        return None
    try:
        done = json.loads(path.read_text())
        if not isinstance(done["rows"], list):
            raise TypeError(f"'rows' is a {type(done['rows']).__name__}, not a list")
        if not all(isinstance(r, dict) and "method" in r for r in done["rows"]):
            raise TypeError("'rows' holds entries that are not results rows (mappings with a 'method')")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{path}: unreadable ({e}); for a VAE or AE run, `bssvae evaluate --run {run_dir} --write` "
                          "scores its weights again and writes a new one; `bssvae train` with --restart trains the "
                          "run again") from e
    return done


def recorded_training(run_dir: Path) -> dict:
    """The training time, device and (for a budgeted run) epochs that the run's ``provenance.json`` recorded when its
    training ended (:func:`train` writes them), as results rows name them; {} where it has none or cannot be read."""
    try:
        prov = json.loads((Path(run_dir) / "provenance.json").read_text())
        facts = {"train_seconds": round(float(prov["train_seconds"]), 2), "device": prov["hardware"]["device"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    budget = prov.get("budget")
    if isinstance(budget, dict) and "epochs_trained" in budget:
        facts["epochs"] = budget["epochs_trained"]
    return facts


def precision_recipe_hint(config: TrainConfig, stored: TrainConfig, diff: list[str]) -> str:
    """Where the ``stored`` run differs in precision and its profile's recipe follows the precision
    (:data:`~bssvae.config.PRECISION_RECIPES`: the cpu profile on CPUs with and without native bf16),
    the option that asks for the stored run; else ''."""
    if ("precision" not in diff or config.profile != stored.profile or stored.profile not in PRECISION_RECIPES
            or stored.precision == "auto"):  # a run from before the recipes: auto named no one precision
        return ""
    return (f"; the {stored.profile} profile's recipe follows the precision it trains in (bssvae.config."
            f"PRECISION_RECIPES and VAE_RECIPES), and --precision {stored.precision} asks for the stored one")


def make_run_config(profile: str = "cpu", task: str = "mnist", method: str = "vae", n_sources: int = 2,
                    run_dir: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """:func:`bssvae.config.make_config`, but a finished run is taken in the precision it trained in.

    Where ``precision`` is left to the machine (unset or ``"auto"``), ``make_config`` picks this
    machine's precision and, for a profile with :data:`~bssvae.config.PRECISION_RECIPES`, that
    precision's recipe. A run finished on another machine (the committed ``cpu`` runs trained in
    bf16) would then differ from it, and reloading it, in the book or a sweep, would be refused. If
    the run directory (``run_dir``, else :func:`default_run_dir`) holds a finished run whose settings
    are exactly ``make_config``'s with its stored precision, that configuration is returned, so the
    run is reloaded as it was trained; otherwise ``make_config``'s. An explicit precision always wins.
    """
    from .config import make_config

    config = make_config(profile, task=task, method=method, n_sources=n_sources, **overrides)
    if overrides.get("precision") not in (None, "auto"):
        return config
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    if not (run_dir / "config.json").exists() or not (run_dir / "metrics.json").exists():  # finished: metrics written last
        return config
    stored = read_run_config(run_dir).precision
    if stored in ("auto", config.precision):
        return config
    as_trained = make_config(profile, task=task, method=method, n_sources=n_sources,
                             **{**overrides, "precision": stored})
    return as_trained if not config_differences(as_trained, run_dir) else config


def run_outputs(run_dir: Path) -> list[str]:
    """The names of the run outputs (:data:`RUN_OUTPUTS` and checkpoints) that ``run_dir`` holds."""
    run_dir = Path(run_dir)
    found = [name for name in RUN_OUTPUTS if (run_dir / name).exists()]
    return found + sorted(p.name for p in run_dir.glob(CHECKPOINT_GLOB))


def check_run_dir(config: TrainConfig, run_dir: Path) -> None:
    """Refuse a ``run_dir`` that cannot take a run of ``config``: a file, a directory holding a run of another
    configuration, or run outputs without the config.json that says how they were made. Writes nothing."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} is a file, not a directory; choose another run directory")
    if (run_dir / "config.json").exists():
        diff = config_differences(config, run_dir)
        if diff:
            stored = read_run_config(run_dir)
            old, asked = stored.to_dict(), config.to_dict()
            detail = ", ".join(f"{k}: stored {old.get(k)!r}, asked {asked.get(k)!r}" for k in diff if k != "model")
            raise RunDirError(f"{run_dir} holds a run with another configuration (differs in {diff}"
                              f"{': ' + detail if detail else ''}){precision_recipe_hint(config, stored, diff)}; "
                              "choose another run directory or delete it")
        return
    # Outputs without their config: the settings that made them are unknown, and taking this run's
    # would rewrite a finished run's config or resume a checkpoint with other settings.
    found = run_outputs(run_dir)
    if found:
        raise RunDirError(f"{run_dir} holds run outputs ({', '.join(found)}) but no config.json, so the "
                          "settings they were made with are unknown; restore its config.json, or choose "
                          "another run directory (or delete this one to start over)")


def claim_run_dir(config: TrainConfig, run_dir: Path) -> None:
    """Claim ``run_dir`` for ``config`` (:func:`check_run_dir`, then its config.json, if it has none yet)."""
    run_dir = Path(run_dir)
    check_run_dir(config, run_dir)
    if (run_dir / "config.json").exists():
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", {"format_version": RUN_FORMAT_VERSION,
                                                    "bssvae_version": __version__, "config": config.to_dict()})
    except OSError as e:  # e.g. a parent that is a file, or a folder this user may not write
        raise RunDirError(f"run directory {run_dir}: cannot write it ({e.strerror or e})") from e


def load_model(run_dir: Path, device: str | torch.device = "cpu",
               allow_partial: bool = False) -> tuple[VAEBSS, TrainConfig]:
    """Load a trained model from a run directory.

    Reads ``model.safetensors``, written when training ends, or else the last checkpoint if it holds
    every epoch of the run (a run stopped between the two writes). A checkpoint of an unfinished run
    is refused unless ``allow_partial``: scoring it would present a half-trained model as the run.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if config.method not in ("vae", "ae"):
        raise RunDirError(f"{run_dir}: method {config.method!r} has no VAE-BSS model to load")
    model = VAEBSS(config.model)
    weights = run_dir / "model.safetensors"
    if weights.exists():
        state = load_weights(weights)
    else:
        ckpt = load_checkpoint(run_dir)
        if ckpt is None:
            if (run_dir / "metrics.json").exists():  # e.g. a committed run whose weights git does not hold
                raise RunDirError(f"{run_dir}: the run finished (it has metrics.json), but its weights are not in "
                                  "this directory (model.safetensors, often not committed to git); copy the run's "
                                  "model.safetensors into it, or train the run again into another directory "
                                  "(`bssvae train` with its settings and --run-dir NEW; --restart here would "
                                  "replace its metrics.json)")
            raise RunDirError(f"{run_dir}: no model.safetensors and no checkpoint; the run has not trained yet")
        if int(ckpt.get("epoch", 0)) < config.epochs and not ckpt.get("budget_spent") and not allow_partial:
            raise RunDirError(f"{run_dir}: training stopped after {int(ckpt.get('epoch', 0))} of {config.epochs} "
                              "epochs (no model.safetensors); finish it first by running the same "
                              "`bssvae train` command again, which resumes it")
        state = ckpt["model"]
        _check_finite(run_dir / checkpoint_name(int(ckpt.get("epoch", 0))), state)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise RunDirError(f"{run_dir}: weights do not fit the configured model ({e})") from e
    return model.to(device).eval(), config


# --------------------------------------------------------------------------------------------
# Training


def start_run(config: TrainConfig, run_dir: Path, task=None, check_task=None):
    """What every run does first: pick the device, set threads, check the run directory, seed, build the task,
    check that the model takes its inputs (and ``check_task(task)``, if given), claim the run directory, read the
    commit (the code this session runs: read at its start, not when the run ends). A run that a check refuses
    leaves no config.json behind, which would hold the directory to its refused settings.
    Returns ``(device, task, wall-clock start, commit)``."""
    device = resolve_device(config.device)
    if device.type == "cpu":
        configure_threads()
    check_run_dir(config, run_dir)  # refused before the task is built
    wall0 = time.perf_counter()
    torch.manual_seed(config.seed)
    task = task if task is not None else build_task(config, device)
    check_model_fits(config, task)
    if check_task is not None:
        check_task(task)
    claim_run_dir(config, run_dir)
    return device, task, wall0, git_commit()


def check_model_fits(config: TrainConfig, task) -> None:
    """Refuse a run whose model does not take the task's inputs (``model.input_dim``)."""
    if task.input_dim != config.model.input_dim:
        raise BssvaeError(f"model.input_dim: the {task.name} task has {task.input_dim} inputs, "
                          f"the model expects {config.model.input_dim}")


def check_batch_fits(config: TrainConfig, task) -> None:
    """Refuse a VAE or AE run whose batch is larger than an epoch's mixtures (the epoch would be one smaller
    batch, while the run records the batch size it asked for)."""
    if config.batch_size > task.mixtures_per_epoch:
        raise BssvaeError(f"batch_size: {config.batch_size} is more than the {task.mixtures_per_epoch} training "
                          f"mixtures of an epoch of this {task.name} run; choose at most {task.mixtures_per_epoch} "
                          "(--batch-size)")


def train_step(forward, opt: torch.optim.Optimizer, x: torch.Tensor, config: TrainConfig, step: int,
               steps_per_epoch: int, amp: bool = False, elapsed_s: float = 0.0) -> tuple[torch.Tensor, float, float]:
    """One optimizer step on a batch of mixtures: schedule, forward, negative ELBO, backward, Adam.

    The learning rate (:func:`lr_at`; with a budget, also the ``elapsed_s`` training seconds before
    this step; Muon's times its ``lr_scale``, :func:`bssvae.optim.group_lr`) and beta
    (:func:`bssvae.losses.beta_at`) follow the global step. ``forward`` is the model or its compiled
    version; ``amp`` runs the forward pass under bf16 autocast. The benchmark
    suite runs this same function (``bench/ours.py``).

    Returns:
        the detached ``[loss, recon, kl]`` on the device (no synchronisation), beta and the learning rate.
    """
    lr = lr_at(config, step, steps_per_epoch, elapsed_s)
    for group in opt.param_groups:
        group["lr"] = group_lr(group, lr)
    beta = beta_at(step / steps_per_epoch, config.beta, config.beta_warmup_epochs)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        out = forward(x)
    terms = negative_elbo(x, out, beta, config.model.variational)
    opt.zero_grad(set_to_none=True)
    terms.loss.backward()
    opt.step()
    return torch.stack([terms.loss.detach(), terms.recon.detach(), terms.kl.detach()]), beta, lr


def train(config: TrainConfig, run_dir: str | Path | None = None, *, resume: bool = True, progress: bool = True,
          task=None, stop_after_epochs: int | None = None, write_results: bool = True) -> dict[str, Any]:
    """Train (or resume) one run, evaluate it on the test set, and record its results.

    Args:
        config: the run; see :func:`bssvae.config.make_config` for profiles.
        run_dir: where the run lives; default ``results/<profile>/runs/<run name>``.
        resume: continue from the directory's checkpoint if there is one.
        progress: show a tqdm progress bar over epochs.
        task: a prepared data task (default: built from the config).
        stop_after_epochs: stop early after this many epochs *in total* (as if interrupted).
        write_results: append the rows to ``results/<profile>/<task>.csv``.

    Returns:
        ``{"run_dir", "rows", "history", "completed"}``; rows are the results-table rows.
    """
    if not isinstance(config, TrainConfig):
        raise BssvaeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    if config.method not in ("vae", "ae"):
        from .baselines import run_baseline

        return run_baseline(config, run_dir, task=task, write_results=write_results, resume=resume,
                            progress=progress, stop_after_epochs=stop_after_epochs)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    if not resume:
        clear_run_outputs(config, run_dir)
    done = read_finished(run_dir)
    if done is not None:
        check_run_dir(config, run_dir)  # refuses a directory holding another configuration
        if write_results:  # idempotent: re-adds rows lost if a run stopped between its two writes
            append_rows(results_dir(config.profile) / f"{config.task}.csv", done["rows"])
        return {"run_dir": run_dir, "rows": done["rows"], "history": read_history(run_dir), "completed": True}
    if resume and (run_dir / "model.safetensors").exists() and not (run_dir / "checkpoint.json").exists():
        # e.g. weights trained on a GPU and copied here without their checkpoint, metrics.json lost
        raise RunDirError(f"{run_dir} holds model.safetensors but neither metrics.json nor a checkpoint, so training "
                          "would start over from epoch 0 and replace those weights; `bssvae evaluate --run "
                          f"{run_dir} --write` scores them and writes metrics.json (the run is then finished), "
                          "and `bssvae train` with --restart trains the run again")
    device, task, wall0, commit = start_run(config, run_dir, task, check_task=lambda t: check_batch_fits(config, t))
    gen = torch.Generator().manual_seed(config.seed)
    model = VAEBSS(config.model).to(device)
    opt = make_optimizer(model, config)
    steps_per_epoch = max(1, task.mixtures_per_epoch // config.batch_size)
    start_epoch, history, train_seconds, resumed_from = 0, [], 0.0, []
    spent = False  # a budgeted run that has used its budget (it may stop inside an epoch)

    ckpt = load_checkpoint(run_dir) if resume else None
    if ckpt is not None:
        try:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:  # torch's size and parameter-group mismatches
            detail = " ".join(str(e).split())[:300]
            raise RunDirError(f"{run_dir}: its checkpoint does not fit this run's model or optimizer ({detail}); it "
                              "was made with other settings: choose another run directory, or use --restart to "
                              "train this one again") from e
        gen.set_state(ckpt["generator"])
        torch.set_rng_state(ckpt["torch_rng"])
        if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ckpt["cuda_rng"])
        start_epoch, train_seconds = int(ckpt["epoch"]), float(ckpt["train_seconds"])
        spent = bool(ckpt.get("budget_spent", False))
        history = read_history(run_dir)[:start_epoch + spent]  # + the partial epoch a budget ended
        if len(history) < start_epoch:  # resuming would leave a gap in it
            raise RunDirError(f"{run_dir / 'history.csv'}: holds {len(history)} epochs, but the checkpoint is after "
                              f"epoch {start_epoch}; the history of the missing epochs is lost: restore the file, or "
                              "train the run again with --restart")
        resumed_from = list(ckpt.get("resumed_from", [])) + [start_epoch]

    forward = torch.compile(model) if config.compile else model
    precision = resolve_precision(config.precision, device)
    amp = precision == "bf16"
    end_epoch = config.epochs if stop_after_epochs is None else min(config.epochs, stop_after_epochs)
    last_ckpt = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        # a budgeted run ends at its budget, which its postfix shows; its epochs are only a cap
        bar = tqdm(total=config.epochs if config.budget_minutes is None else None, initial=start_epoch,
                   desc=config.run_name, unit="epoch", mininterval=2.0, dynamic_ncols=True)
    for epoch in range(start_epoch, end_epoch):
        if spent:
            break
        t0 = time.perf_counter()
        model.train()
        sums = torch.zeros(3, device=device)
        n_batches = 0
        for i, x in enumerate(task.epoch_batches(gen, config.batch_size)):
            elapsed = train_seconds + time.perf_counter() - t0
            if budget_spent(config, elapsed):
                spent = True
                break
            terms, beta, lr = train_step(forward, opt, x, config, epoch * steps_per_epoch + i, steps_per_epoch, amp,
                                         elapsed_s=elapsed)
            sums += terms
            n_batches += 1
        if spent and n_batches == 0:  # the budget ran out exactly at the end of the previous epoch
            train_seconds += time.perf_counter() - t0
            write_history(run_dir, history)
            _save_state(run_dir, model, opt, gen, device, epoch, train_seconds, resumed_from, True)
            break
        means = (sums / max(1, n_batches)).tolist()  # one device sync per epoch
        if not all(math.isfinite(v) for v in means):
            raise TrainingError(f"{config.run_name}: loss became {means[0]} in epoch {epoch + 1}; "
                                "lower the learning rate or use precision='fp32'")
        train_seconds += time.perf_counter() - t0
        done = epoch + 1 if not spent else round(epoch + n_batches / steps_per_epoch, 4)
        history.append({"epoch": done, "loss": means[0], "recon": means[1], "kl": means[2], "beta": beta,
                        "lr": lr, "train_seconds": train_seconds})
        if bar is not None:
            budget = ({} if config.budget_minutes is None else
                      {"budget": f"{train_seconds / 60:.1f} of {config.budget_minutes:g} min"})
            bar.set_postfix(loss=f"{means[0]:.1f}", **budget, refresh=False)
            bar.update(1)
        is_last = epoch + 1 == end_epoch or spent
        if is_last or time.perf_counter() - last_ckpt >= config.checkpoint_every_s:
            write_history(run_dir, history)
            # A budget spent inside an epoch: the checkpoint counts the whole epochs before it and says
            # that training is over, so a resume goes straight to the evaluation.
            _save_state(run_dir, model, opt, gen, device, epoch + (not spent), train_seconds, resumed_from, spent)
            last_ckpt = time.perf_counter()
    if bar is not None:
        bar.close()
    if end_epoch < config.epochs and not spent:
        return {"run_dir": run_dir, "rows": [], "history": history, "completed": False}
    epochs_trained = history[-1]["epoch"] if spent and history else config.epochs

    save_weights(run_dir / "model.safetensors", model, config)
    t_eval = time.perf_counter()
    rows, examples = evaluate_model(model, task, config, run_dir, train_seconds, str(device),
                                    epochs_trained=epochs_trained)
    eval_seconds = time.perf_counter() - t_eval
    write_npz(run_dir / "examples.npz", examples)
    atomic_write_json(run_dir / "provenance.json", provenance(
        str(device), config=config.to_dict(), seed=config.seed, train_seconds=train_seconds,
        eval_seconds=eval_seconds, wall_seconds_this_session=time.perf_counter() - wall0, precision=precision,
        commit=commit,
        resumed_from_epochs=resumed_from,
        **({"budget": {"minutes": config.budget_minutes, "epochs_trained": epochs_trained,
                       "ended_by": "budget" if spent else "epochs"}} if config.budget_minutes is not None else {})))
    # metrics.json last: it marks the run finished, so nothing of the run may be missing once it exists
    atomic_write_json(run_dir / "metrics.json", {"rows": rows, "eval_seconds": eval_seconds})
    if write_results:  # a retrained model invalidates the refined row of the model it replaces
        stale = [dict(r, method="vaem-refined") for r in rows if r["method"] == "vaem"]
        append_rows(results_dir(config.profile) / f"{task.name}.csv", rows, drop=stale)
    return {"run_dir": run_dir, "rows": rows, "history": history, "completed": True}


def evaluate_model(model: VAEBSS, task, config: TrainConfig, run_dir: Path, train_seconds: float,
                   device: str, refine_steps: int = 0, write_audio: bool = True,
                   epochs_trained: float | None = None) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Score the model's test estimates: decoded (``vae``/``ae``) and, for the VAE, masked (``vaem``).

    For the audio task it also writes ``audio_examples.npz`` to ``run_dir`` unless ``write_audio``
    is False (a re-evaluation that must not touch the run directory).

    ``epochs_trained`` is the rows' ``epochs`` (default ``config.epochs``; a run that a budget ended
    trained fewer, perhaps a fraction).

    With ``refine_steps`` > 0 (VAE only), also ``vaem-refined``: VAEM after fitting each test
    mixture's latents to it (:mod:`bssvae.refine`; not in the paper, so a row of its own).
    """
    refine_steps = check_int("refine_steps", refine_steps, minimum=0)
    if refine_steps and not config.model.variational:
        raise BssvaeError("refine_steps: latent refinement rows are defined for VAE runs (method vae), "
                          "not for the AE")
    x, s = task.test_set()
    s_hat = model.separate(x, mask=False)
    x_cpu = x.detach().cpu()
    estimates = {"ae": s_hat} if not config.model.variational else {"vae": s_hat, "vaem": vaem(s_hat, x_cpu)}
    if refine_steps:
        estimates["vaem-refined"] = model.separate(x, mask=True, refine_steps=refine_steps)
    rel = run_dir_label(run_dir)
    rows = []
    for method, est in estimates.items():
        scores = task.evaluate(est)
        rows.append({"method": method, "n_sources": config.n_sources, "n_digits": config.n_digits,
                     "seed": config.seed, "epochs": config.epochs if epochs_trained is None else epochs_trained,
                     **scores.summary(),
                     "train_seconds": round(train_seconds, 2), "device": device, "run_dir": rel})
    if write_audio and getattr(task, "examples", None) is not None:  # waveforms to listen to (book/audio/figure3)
        write_npz(Path(run_dir) / "audio_examples.npz", task.examples(estimates, n=4))
    n = min(getattr(task, "n_examples", N_EXAMPLES), x.shape[0])
    examples = {"x": x_cpu[:n].numpy(), "s": s[:n].detach().cpu().numpy()}
    for method, est in estimates.items():
        examples[method] = est[:n].numpy()
    return rows, {k: v.astype(np.float16) for k, v in examples.items()}


def _save_state(run_dir: Path, model, opt, gen, device, epochs_done: int, train_seconds: float,
                resumed_from: list, budget_spent: bool) -> None:
    """Checkpoint the training state after ``epochs_done`` whole epochs (``budget_spent``: training is over)."""
    save_checkpoint(run_dir, {
        "model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
        "epoch": epochs_done, "train_seconds": train_seconds, "resumed_from": resumed_from,
        "budget_spent": budget_spent})


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays to a compressed ``.npz`` atomically (a run's examples, audio examples)."""
    np.savez_compressed(buf := io.BytesIO(), **arrays)
    atomic_write_bytes(Path(path), buf.getvalue())


