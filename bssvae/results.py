"""Atomic files, the results tables, and provenance.

Every file a run or a sweep writes goes through :func:`atomic_write_bytes` (write to a temporary
file in the same directory, fsync, rename), so a partially written file is never read as valid.
Rows are appended to ``results/<profile>/<task>.csv`` under a file lock, replacing any earlier row
with the same key, so re-running or resuming never duplicates rows.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import functools
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from . import openmp
from .errors import RunDirError

#: Columns every results row has (Table II's inputs); tasks may add more after these.
RESULT_COLUMNS = ["method", "n_sources", "n_digits", "seed", "epochs", "psnr", "ssim", "psnr_halved",
                  "ssim_halved", "train_seconds", "device", "run_dir"]
ROW_KEY = ("method", "n_sources", "n_digits", "seed")


def project_root() -> Path:
    """The repository root: ``$BSSVAE_ROOT``, else the nearest parent of the working directory
    holding ``_toc.yml`` and ``bssvae/``, else the working directory."""
    if os.environ.get("BSSVAE_ROOT"):
        return Path(os.environ["BSSVAE_ROOT"]).expanduser().resolve()
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if (p / "_toc.yml").exists() and (p / "bssvae").is_dir():
            return p
    return here


def run_dir_label(run_dir: Path) -> str:
    """How a results row names its run directory: relative to the project root, else absolute."""
    path = Path(run_dir).resolve()
    try:
        return str(path.relative_to(project_root()))
    except ValueError:
        return str(path)


def results_dir(profile: str) -> Path:
    return project_root() / "results" / profile


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would make results private to their writer
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it: set it, then restore it at once
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import: os.umask is process-wide and not thread-safe


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive advisory lock on ``path``.lock (parallel sweep workers share result files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append_rows(csv_path: Path, rows: Iterable[dict], key: Iterable[str] = ROW_KEY,
                drop: Iterable[dict] = ()) -> pd.DataFrame:
    """Add rows to a results CSV, replacing rows with the same key; atomic and locked.

    ``drop``: keys of further rows to remove (e.g. the refined row of a model that was retrained).
    A replaced row that came from another run directory is reported with a warning.
    """
    csv_path = Path(csv_path)
    key = list(key)
    new = pd.DataFrame(list(rows))
    gone = pd.DataFrame(list(drop))
    with file_lock(csv_path):
        if csv_path.exists():
            old = pd.read_csv(csv_path)
            if not old.empty and not new.empty and all(k in old for k in key):
                if "run_dir" in old and "run_dir" in new:
                    clash = old.merge(new[key + ["run_dir"]], on=key, suffixes=("_old", ""))
                    for r in clash[clash["run_dir_old"] != clash["run_dir"]].itertuples():
                        warnings.warn(f"{csv_path}: the {r.method} row of K = {r.n_sources}, seed {r.seed} came from "
                                      f"{r.run_dir_old} and is replaced by that of {r.run_dir}", stacklevel=2)
                targets = pd.concat([new[key], gone[key]] if not gone.empty else [new[key]]).drop_duplicates()
                merged = old.merge(targets, on=key, how="left", indicator=True)
                old = old[(merged["_merge"] == "left_only").to_numpy()]
            df = pd.concat([old, new], ignore_index=True) if not old.empty else new
        else:
            df = new
        cols = [c for c in RESULT_COLUMNS if c in df] + [c for c in df if c not in RESULT_COLUMNS]
        df = df[cols].sort_values(key).reset_index(drop=True)
        buf = io.StringIO()
        df.to_csv(buf, index=False)
        atomic_write_text(csv_path, buf.getvalue())
    return df


def rows_without(table: pd.DataFrame, method: str, lacking: str,
                 key: Iterable[str] = ("n_sources", "n_digits", "seed")) -> pd.DataFrame:
    """The ``method`` rows of a results table that have no ``lacking`` row with the same key.

    For example the VAE runs never scored with refined latents: ``rows_without(t, "vaem", "vaem-refined")``.
    Add ``"profile"`` (or any other column) to ``key`` when the table joins several profiles.
    """
    key = list(key)
    missing = [k for k in key + ["method"] if k not in table]
    if missing:
        raise ValueError(f"table: expected the columns {missing} (a results table), got {list(table.columns)}")
    have = table[table["method"] == method]
    other = table.loc[table["method"] == lacking, key].drop_duplicates()
    merged = have.merge(other, on=key, how="left", indicator=True)
    return have[(merged["_merge"] == "left_only").to_numpy()]


#: Columns of a run's ``history.csv``, in this order where present (the training notebook plots loss, recon and kl).
HISTORY_COLUMNS = ["epoch", "stage", "loss", "recon", "kl", "beta", "lr", "train_seconds"]


def write_history(run_dir: Path, history: list[dict]) -> None:
    """Write a run's ``history.csv`` atomically, one row per epoch (an empty file for no epochs: a budget spent
    before the first step)."""
    df = pd.DataFrame(history)
    cols = [c for c in HISTORY_COLUMNS if c in df] + [c for c in df if c not in HISTORY_COLUMNS]
    atomic_write_text(Path(run_dir) / "history.csv", df[cols].to_csv(index=False) if len(df) else "")


def read_history(run_dir: Path) -> list[dict]:
    """A run's ``history.csv`` as records ([] without one, or for the empty file of no epochs); a damaged file,
    or one without an 'epoch' column, raises :class:`~bssvae.errors.RunDirError`."""
    path = Path(run_dir) / "history.csv"
    if not path.exists():
        return []
    try:
        text = path.read_text()
        if not text.strip():
            return []
        records = pd.read_csv(io.StringIO(text)).to_dict("records")
    except (OSError, ValueError, pd.errors.ParserError) as e:  # ValueError: bytes that are not UTF-8 text
        raise RunDirError(f"{path}: unreadable history ({type(e).__name__}: {e}); restore it, or train the run "
                          "again with --restart") from e
    if records and "epoch" not in records[0]:
        raise RunDirError(f"{path}: not a training history (no 'epoch' column); restore it, or train the run "
                          "again with --restart")
    return records


def read_run_rows(run_dir: Path) -> list[dict] | None:
    """The results rows a finished run directory recorded in its ``metrics.json``; None if it has none."""
    try:
        return json.loads((Path(run_dir) / "metrics.json").read_text())["rows"]
    except (OSError, KeyError, json.JSONDecodeError):
        return None


#: Extensions of the result files that runs write under ``results/``: not code, for :func:`git_commit`.
RESULT_DATA = ("csv", "json", "npz")


def git_commit(root: Path | None = None) -> str:
    """The current commit of the repository, suffixed ``-dirty`` if tracked files have local changes,
    other than the data files under ``results/`` (:data:`RESULT_DATA`). What runs write there (their
    rows, their run directories) does not change the code that the commit names, so a sweep's later
    runs are not marked by its earlier ones; the ablation scripts kept there still count."""
    if os.environ.get("BSSVAE_COMMIT"):  # set where the code runs from a copy without .git (GPU machine)
        return os.environ["BSSVAE_COMMIT"]
    root = root or project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                *(f":(exclude,glob)results/**/*.{ext}" for ext in RESULT_DATA)], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cpuinfo_field(name: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The value of the first ``name`` line of /proc/cpuinfo (the first CPU's); None where absent."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == name:  # "model" is not "model name"
                return value.strip()
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


def cpu_id(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any] | None:
    """The CPU's vendor, family and model numbers from /proc/cpuinfo (e.g. ``{"vendor": "AuthenticAMD",
    "family": 25, "model": 17}``, an AMD Zen 4), or None where it does not say. A cloud names CPUs of
    several generations alike ("AMD EPYC"); the numbers tell them apart."""
    family, model = _cpuinfo_field("cpu family", cpuinfo), _cpuinfo_field("model", cpuinfo)
    if not (family and family.isdigit() and model and model.isdigit()):
        return None
    return {"vendor": _cpuinfo_field("vendor_id", cpuinfo), "family": int(family), "model": int(model)}


#: The /proc/cpuinfo flags that decide how fast a float32 or bfloat16 matmul can run.
VECTOR_FLAGS = ("fma", "avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


#: The flags of a CPU with bf16 instructions (any one of them), fastest first, with their names.
NATIVE_BF16_FLAGS = {"amx_bf16": "AMX", "avx512_bf16": "AVX512-BF16"}


def bf16_instructions(flags) -> str | None:
    """The fastest bf16 instructions CPU ``flags`` (:func:`cpu_vector_flags`, or a recorded
    ``hardware()["cpu_flags"]``) name: ``"AMX"``, ``"AVX512-BF16"`` (:data:`NATIVE_BF16_FLAGS`), or None."""
    return next((name for flag, name in NATIVE_BF16_FLAGS.items() if flag in (flags or ())), None)


def cpu_generation(hw: dict) -> str | None:
    """A CPU's family and model numbers as the suite's keys and the book's tables name them (``family 26 model 2``),
    from a recorded ``hardware()`` (its ``cpu_id``, recorded since 2026-12-06), or None where they are not recorded."""
    ident = hw.get("cpu_id") or {}
    return f"family {ident['family']} model {ident['model']}" if "family" in ident and "model" in ident else None


def has_native_bf16(flags) -> bool:
    """Whether CPU ``flags`` include bf16 instructions (:func:`bf16_instructions`). Having them does not
    make bf16 faster than float32 (:func:`cpu_bf16_speedup` measures that)."""
    return bf16_instructions(flags) is not None


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup(repeats: int = 7) -> float:
    """How many times faster a training step runs under bf16 autocast than in float32 on this CPU, measured
    once per process (:func:`bf16_step_ratio` on one thread, timed in its CPU time).

    The flags cannot say it: a 2-core Intel Xeon that reports AVX512-BF16 but whose virtual machine
    does not expose AMX multiplies bf16 at about half its float32 speed (168 against 311 GFLOP/s) and
    trains at 0.72x, where an AMD EPYC with the same flag trains 2.38x faster in bf16 and the Xeon
    with AMX 1.56x (the step at batch 512, results/bench.json).
    One thread timed in its own CPU time is what lets other processes on the cores leave the ratio
    alone: on several threads, timed on the wall clock, the threads' waits at their barriers while
    another process holds a core take time that does not scale with the work. On the Xeon with AMX, in
    fresh processes whose threads spun beside a busy process, that way measured 0.93x to 2.92x (6 of 8
    under :data:`bssvae.train.BF16_MIN_SPEEDUP`), one thread 1.93x to 2.29x (results/ablations/bf16-probe/).
    """
    return bf16_step_ratio(repeats)


def bf16_step_ratio(repeats: int = 7, *, one_thread: bool = True, clock: Callable[[], float] | None = None) -> float:
    """The float32 time of a training step over its time under bf16 autocast.

    The step is that of the MNIST model's first two layers (Linear + BatchNorm + ReLU, 784-700-600)
    at batch 256: forward (under autocast for bf16), backward. The two precisions alternate so that
    they see the same conditions, and each keeps its fastest repeat after one warm-up. With
    ``one_thread`` torch runs on one thread for the while, and ``clock`` defaults to that thread's CPU
    time (:func:`time.thread_time`); else it runs on torch's threads and ``clock`` defaults to the wall
    clock. Torch's thread count and the global random state are left as they were.
    """
    import time

    import torch
    from torch import nn

    clock = clock or (time.thread_time if one_thread else time.perf_counter)
    threads = torch.get_num_threads()
    if one_thread:
        torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = nn.Sequential(nn.Linear(784, 700), nn.BatchNorm1d(700), nn.ReLU(),
                                nn.Linear(700, 600), nn.BatchNorm1d(600), nn.ReLU())
            x = torch.rand(256, 784)
            best = {False: float("inf"), True: float("inf")}
            for i in range(repeats + 1):
                for amp in (False, True):
                    t0 = clock()
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                        y = net(x)
                    y.float().square().mean().backward()
                    if i:
                        best[amp] = min(best[amp], clock() - t0)
    finally:
        torch.set_num_threads(threads)
    return best[False] / best[True]


def cpu_vector_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The :data:`VECTOR_FLAGS` this CPU reports (empty where ``cpuinfo`` is not there)."""
    flags = (_cpuinfo_field("flags", cpuinfo) or "").split()
    return [f for f in VECTOR_FLAGS if f in flags]


def hardware(device: str | None = None) -> dict[str, Any]:
    import torch

    info = {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            # The vector instructions PyTorch's CPU kernels use (e.g. AVX2, AVX512) and the CPU's own
            # flags: an AVX2 CPU trains bf16 ~15x slower than fp32, one with AMX ~5x faster.
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_flags": cpu_vector_flags(),
            "cpu_id": cpu_id(),
            "platform": platform.platform(), "hostname": socket.gethostname(),
            # how the threads waited between operators (spinning or passive), and why
            "openmp": openmp.summary()}
    if has_native_bf16(info["cpu_flags"]):  # what decides precision="auto" on this CPU (bssvae.train)
        info["bf16_step_speedup"] = round(cpu_bf16_speedup(), 2)
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    if device:
        info["device"] = device
    return info


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("bssvae", "torch", "numpy", "scipy", "scikit-image", "scikit-learn", "pandas",
                 "safetensors", "librosa", "fast_bss_eval", "papermill", "jupyter-book"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def provenance(device: str | None = None, **extra: Any) -> dict[str, Any]:
    """Where a result came from: command, commit, package versions, hardware, time."""
    return {"command": " ".join(sys.argv), "commit": git_commit(), "versions": package_versions(),
            "hardware": hardware(device), "written_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            **extra}
