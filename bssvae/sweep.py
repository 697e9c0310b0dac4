"""Sweeps: every (task, method, K, seed) of a YAML sweep file, through the papermill training notebook.

A sweep file (see ``sweeps/``)::

    profile: paper            # smoke | cpu | paper | authors
    jobs: {cpu: 1, cuda: 8}   # runs in parallel per device type
    grid:
      - task: mnist
        methods: [vae, ae]
        n_sources: [2, 3, 4]
        seeds: [0, 1, 2]
        n_digits: 2           # optional (default 2)
        overrides: {}         # optional TrainConfig overrides, e.g. {epochs: 50}

Finished runs (a run directory with metrics.json) are skipped, interrupted ones resume from their
checkpoint, and rows are keyed so that nothing is ever duplicated. Each executed notebook is saved
as ``results/<profile>/notebooks/<run name>.ipynb`` (written under a temporary name first).
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from . import openmp
from .config import PROFILES
from .errors import BssvaeError, RunDirError, check_choice, check_int
from .results import project_root, results_dir

NOTEBOOK = Path("book") / "notebooks" / "train.ipynb"
_TOP_KEYS = {"profile", "jobs", "grid"}
#: Settings that name a run (its directory): the grid sets them, an override may not.
_RUN_FIELDS = {"profile", "task", "method", "methods", "n_sources", "seed", "seeds", "n_digits"}
_GRID_KEYS = {"task", "methods", "n_sources", "seeds", "n_digits", "overrides"}


@dataclasses.dataclass(frozen=True)
class SweepRun:
    profile: str
    task: str
    method: str
    n_sources: int
    seed: int
    n_digits: int
    overrides: tuple

    @functools.cached_property  # built once per run: name, validation and the finished-run check read it
    def config(self):
        from .train import make_run_config  # a finished run as it trained, where the sweep leaves precision be

        return make_run_config(self.profile, task=self.task, method=self.method, n_sources=self.n_sources,
                               seed=self.seed, n_digits=self.n_digits, **dict(self.overrides))

    @property
    def name(self) -> str:
        return self.config.run_name


def train_one(spec_json: str) -> None:
    """Train one run described by a JSON object of make_config arguments (the no-notebook runner)."""
    from .train import make_run_config, train

    spec = json.loads(spec_json)
    train(make_run_config(spec.pop("profile"), **spec), progress=False)


def load_sweep(path: Path, profile: str | None = None) -> tuple[list[SweepRun], dict[str, int]]:
    """Parse and validate a sweep file. Returns the runs and the jobs-per-device mapping."""
    path = Path(path)
    if not path.exists():
        raise BssvaeError(f"sweep file {path} does not exist")
    if not path.is_file():
        raise BssvaeError(f"sweep file {path} is not a file (a directory?); name a YAML sweep file, e.g. in sweeps/")
    try:
        spec = yaml.safe_load(path.read_text())
    except UnicodeDecodeError as e:
        raise BssvaeError(f"sweep file {path}: not UTF-8 text ({e}); is it a YAML sweep file?") from e
    except OSError as e:
        raise BssvaeError(f"sweep file {path}: cannot read it ({e.strerror or e})") from e
    except yaml.YAMLError as e:
        raise BssvaeError(f"sweep file {path}: not valid YAML ({e})") from e
    if not isinstance(spec, dict):
        raise BssvaeError(f"sweep file {path}: expected a mapping with keys {sorted(_TOP_KEYS)}")
    unknown = set(spec) - _TOP_KEYS
    if unknown:
        raise BssvaeError(f"sweep file {path}: unknown keys {sorted(unknown)}; known: {sorted(_TOP_KEYS)}")
    profile = check_choice("profile", profile or spec.get("profile", "cpu"), PROFILES)
    jobs = spec.get("jobs") or {}
    if not isinstance(jobs, dict) or not all(k in ("cpu", "cuda") for k in jobs):
        raise BssvaeError(f"sweep file {path}: jobs must map 'cpu'/'cuda' to integers, got {jobs!r}")
    jobs = {k: check_int(f"jobs.{k}", v, minimum=1) for k, v in jobs.items()}
    grid = spec.get("grid")
    if not isinstance(grid, list) or not grid:
        raise BssvaeError(f"sweep file {path}: expected a non-empty list under 'grid'")
    runs: list[SweepRun] = []
    for i, block in enumerate(grid):
        if not isinstance(block, dict):
            raise BssvaeError(f"sweep file {path}: grid[{i}] must be a mapping")
        unknown = set(block) - _GRID_KEYS
        if unknown:
            raise BssvaeError(f"sweep file {path}: grid[{i}] has unknown keys {sorted(unknown)}; "
                              f"known: {sorted(_GRID_KEYS)}")
        overrides = block.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise BssvaeError(f"sweep file {path}: grid[{i}].overrides must be a mapping")
        clash = sorted(set(overrides) & _RUN_FIELDS)
        if clash:
            raise BssvaeError(f"sweep file {path}: grid[{i}].overrides sets {clash}, which the grid itself "
                              "sets: use the grid's methods, n_sources, seeds, task and n_digits keys")
        for method in _as_list(block.get("methods", ["vae"])):
            for k in _as_list(block.get("n_sources", [2])):
                for seed in _as_list(block.get("seeds", [0])):
                    run = SweepRun(profile, block.get("task", "mnist"), method, k, seed,
                                   block.get("n_digits", 2), tuple(sorted(overrides.items())))
                    try:
                        run.config  # validates every field now, before anything runs
                    except RunDirError:  # a finished run's directory, which names itself
                        raise
                    except (TypeError, BssvaeError) as e:  # TypeError: a value make_config cannot take
                        raise BssvaeError(f"sweep file {path}: grid[{i}]: {e}") from e
                    same = next((r for r in runs if r.name == run.name), None)
                    if same is not None and same != run:
                        raise BssvaeError(f"sweep file {path}: grid[{i}] defines run {run.name} again with "
                                          "other overrides; one run directory cannot hold both")
                    if same is None:
                        runs.append(run)
    return runs, jobs


def _as_list(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _is_done(run: SweepRun) -> bool:
    return (results_dir(run.profile) / "runs" / run.name / "metrics.json").exists()


def _check_finished_runs_match(runs: list[SweepRun]) -> None:
    """A finished run counts as done only if it was trained with the sweep's settings for it."""
    from .baselines.common import resolve_settings, settings_differences
    from .train import config_differences, precision_recipe_hint, read_run_config

    stale = []
    for run in runs:
        if _is_done(run):
            run_dir = results_dir(run.profile) / "runs" / run.name
            diff = config_differences(run.config, run_dir)
            if not diff and run.config.method not in ("vae", "ae"):  # and the method's own settings
                diff = settings_differences(resolve_settings(run.config), run_dir)
            if diff:
                hint = precision_recipe_hint(run.config, read_run_config(run_dir), diff)
                stale.append(f"{run.name} (differs in {diff}{hint})")
    if stale:
        raise BssvaeError("finished runs were trained with other settings than the sweep asks for: "
                          + "; ".join(stale) + ". Move their run directories away to retrain them, "
                          "or change the sweep file back")


def _has_notebook(run: SweepRun) -> bool:
    return (results_dir(run.profile) / "notebooks" / f"{run.name}.ipynb").exists()


def _command(run: SweepRun, use_notebook: bool, out_tmp: Path) -> list[str]:
    if not use_notebook:
        spec = json.dumps({"profile": run.profile, "task": run.task, "method": run.method,
                           "n_sources": run.n_sources, "n_digits": run.n_digits, "seed": run.seed,
                           **dict(run.overrides)})
        return [sys.executable, "-c", "import sys; from bssvae.sweep import train_one; train_one(sys.argv[1])", spec]
    cmd = [sys.executable, "-m", "papermill", str(project_root() / NOTEBOOK), str(out_tmp), "--kernel", "python3",
           "--cwd", str(project_root() / NOTEBOOK.parent), "--log-level", "WARNING",
           "-p", "profile", run.profile, "-p", "task", run.task, "-p", "method", run.method,
           "-p", "n_sources", str(run.n_sources), "-p", "n_digits", str(run.n_digits), "-p", "seed", str(run.seed)]
    if run.overrides:
        cmd += ["-y", yaml.safe_dump({"overrides": dict(run.overrides)})]
    return cmd


# Kernels started at the same moment by parallel papermill processes can race for the same free
# ports (jupyter_client picks them by binding port 0, then releases them for the kernel); the loser
# dies before it answers kernel_info, before any cell ran. Nothing was trained, so such a start is
# retried; any other failure is reported at once.
KERNEL_START_RETRIES = 2
_KERNEL_START_FAILURE = "Kernel died before replying to kernel_info"


def _kernel_never_started(log: Path) -> bool:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return False
    return _KERNEL_START_FAILURE in text


_CHILDREN: set[subprocess.Popen] = set()
_CHILDREN_LOCK = threading.Lock()


def _run_child(cmd, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run, with the process registered so that an interrupted sweep can stop it."""
    with subprocess.Popen(cmd, **kwargs) as proc:
        with _CHILDREN_LOCK:
            _CHILDREN.add(proc)
        try:
            proc.wait()
        finally:
            with _CHILDREN_LOCK:
                _CHILDREN.discard(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode)


def _stop_children(grace_s: float = 10.0) -> None:
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for proc in children:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in children:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def _execute(run: SweepRun, use_notebook: bool, threads: int, device_type: str) -> tuple[str, float, str]:
    nb_dir = results_dir(run.profile) / "notebooks"
    nb_dir.mkdir(parents=True, exist_ok=True)
    out = nb_dir / f"{run.name}.ipynb"
    tmp = nb_dir / f".{run.name}.running.ipynb"
    env = dict(os.environ, BSSVAE_ROOT=str(project_root()), PYTHONUNBUFFERED="1")
    if device_type == "cpu":
        env["BSSVAE_THREADS"] = str(threads)
        env["OMP_NUM_THREADS"] = str(threads)
    log = nb_dir / f".{run.name}.log"
    t0 = time.perf_counter()
    for attempt in range(1 + KERNEL_START_RETRIES):
        with open(log, "w") as f:
            proc = _run_child(_command(run, use_notebook, tmp), env=env, stdout=f, stderr=subprocess.STDOUT)
        if proc.returncode == 0 or not _kernel_never_started(log):
            break
        time.sleep(1.0 + attempt)  # let the concurrent kernel that took the ports settle
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        if tmp.exists():
            os.replace(tmp, nb_dir / f"{run.name}.failed.ipynb")
        tail = log.read_text()[-2000:]
        return "failed", seconds, tail
    if use_notebook and tmp.exists():
        os.replace(tmp, out)
    (nb_dir / f"{run.name}.failed.ipynb").unlink(missing_ok=True)  # an earlier failure, now superseded
    log.unlink(missing_ok=True)
    return "ok", seconds, ""


def run_sweep(sweep_file: Path, profile: str | None = None, jobs: int | None = None, dry_run: bool = False,
              use_notebook: bool = True, only: str | None = None) -> int:
    """Run a sweep; returns the exit status (0 when every run finished)."""
    import torch

    runs, jobs_spec = load_sweep(sweep_file, profile)
    if only:
        runs = [r for r in runs if only in r.name]
        if not runs:
            raise BssvaeError(f"--only: no run of {sweep_file} has {only!r} in its name")
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    n_jobs = check_int("jobs", jobs, minimum=1) if jobs is not None else jobs_spec.get(device_type, 1)
    cores = openmp.available_cores()
    threads = max(1, cores // n_jobs)
    _check_finished_runs_match(runs)
    todo = [r for r in runs if not _is_done(r)]
    n_train = len(todo)
    if use_notebook:  # finished runs trained elsewhere (e.g. a GPU machine) still get their executed notebook
        todo += [r for r in runs if _is_done(r) and not _has_notebook(r)]
    notebook = project_root() / NOTEBOOK
    if use_notebook and not dry_run and todo and not notebook.exists():  # else each run fails in papermill
        raise BssvaeError(f"the training notebook {notebook} is not there (the repository root is found from "
                          "the working directory, or BSSVAE_ROOT); run the sweep from the repository, set "
                          "BSSVAE_ROOT to it, or use --no-notebook")
    print(f"sweep {sweep_file}: {len(runs)} runs, {len(runs) - n_train} already trained, {n_train} to train, "
          f"{len(todo) - n_train} to reload for their notebook "
          f"({n_jobs} at a time on {device_type}{f', {threads} threads each' if device_type == 'cpu' else ''})")
    if dry_run:
        for r in runs:
            state = "done" if _is_done(r) else "todo"
            if use_notebook and _is_done(r) and not _has_notebook(r):
                state = "done, notebook todo"
            print(f"  {state:20s} {r.name}")
        return 0
    failures = 0
    t0 = time.perf_counter()
    pool = cf.ThreadPoolExecutor(max_workers=n_jobs)
    try:
        futures = {pool.submit(_execute, r, use_notebook, threads, device_type): r for r in todo}
        for fut in cf.as_completed(futures):
            run = futures[fut]
            status, seconds, tail = fut.result()
            print(f"  {status:6s} {run.name} ({seconds:.0f} s)", flush=True)
            if status != "ok":
                failures += 1
                print("    " + tail.replace("\n", "\n    "), file=sys.stderr)
    except KeyboardInterrupt:
        # Queued runs must not start, and running ones stop: their checkpoints let the next sweep resume.
        pool.shutdown(wait=False, cancel_futures=True)
        _stop_children()
        print("sweep interrupted: running runs stopped, queued runs not started; run the same command "
              "again to resume", file=sys.stderr, flush=True)
        raise
    finally:
        pool.shutdown(wait=True)
    print(f"sweep finished in {time.perf_counter() - t0:.0f} s: {len(todo) - failures} ran, {failures} failed")
    return 1 if failures else 0
