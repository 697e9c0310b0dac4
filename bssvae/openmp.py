"""How PyTorch's OpenMP threads wait between operators, chosen when bssvae is imported.

After each parallel operator, PyTorch's OpenMP threads meet at a barrier. By default a thread that
arrives first spins for a while (libgomp, which PyTorch's Linux wheels ship, 300,000 times) before
it sleeps, which saves waking it for the next of the many small operators of a training step. On
cores shared with another busy process the spinning thread holds a core that the thread it waits
for, or the other process, needs; "passive" waiting (``OMP_WAIT_POLICY=PASSIVE``) sleeps at once.

Measured on two 2-core machines (``results/ablations/omp-spin/``; book: Recipe choices,
"Threads"), the `cpu` profile's step ran faster with spinning threads when the machine was
otherwise idle, and at about half the speed of passive waiting beside one busy process. Neither
policy wins everywhere, so ``BSSVAE_OMP_WAIT`` chooses:

- ``auto`` (default): look at the cores for :data:`SAMPLE_SECONDS` (``/proc/stat``) and let the
  threads spin (OpenMP's default) when the cores they need are idle, wait passively otherwise;
- ``passive``: always wait passively (the choice for a machine shared with other work);
- ``spin``: always keep OpenMP's default.

OpenMP reads its variables once, when PyTorch loads it, so this works only when bssvae is imported
before torch (the command line, the sweeps and the book's training notebook do), and it is decided
once: a process that starts on idle cores keeps spinning if another busy process starts beside it
later.
``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT`` or ``KMP_BLOCKTIME`` set in the environment are left as they
are. The waiting policy changes no result, only the speed; :data:`DECISION` records what was
chosen and why, and every run's provenance carries it (:func:`bssvae.results.hardware`).

This module must not import torch.
"""
from __future__ import annotations

import os
import sys
import time

#: The environment variable that chooses the waiting policy, and its values.
ENV = "BSSVAE_OMP_WAIT"
MODES = ("auto", "passive", "spin")
#: OpenMP's own variables: when one is set, bssvae leaves the waiting to it.
OPENMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
#: How long ``auto`` looks at the cores (``/proc/stat`` counts in 1/100 s ticks).
SAMPLE_SECONDS = 0.2
#: ``auto`` spins when other processes keep at most this many cores busy beyond the cores our
#: threads leave free (background noise, e.g. a shell or an idle notebook server).
BUSY_SLACK = 0.5

#: What was decided when bssvae was imported (:func:`decide`), for provenance and error reports.
DECISION: dict = {}


def _cpu_ids() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _read_proc_stat(path: str) -> dict[int, tuple[int, int]]:
    """Busy and total ticks per CPU: busy counts user, nice, system, irq, softirq and steal time."""
    out = {}
    with open(path) as f:
        for line in f:
            name, *fields = line.split()
            if not name.startswith("cpu") or name == "cpu":
                continue
            ticks = [int(x) for x in fields[:8]] + [0] * max(0, 8 - len(fields))
            user, nice, system, idle, iowait, irq, softirq, steal = ticks[:8]
            busy = user + nice + system + irq + softirq + steal
            out[int(name[3:])] = (busy, busy + idle + iowait)
    return out


def busy_cores(seconds: float = SAMPLE_SECONDS, cpus: set[int] | None = None,
               path: str = "/proc/stat") -> float | None:
    """How many of ``cpus`` (default: those this process may run on) were busy over ``seconds``,
    summed over the CPUs (0 to their number); ``None`` where ``path`` cannot be read (not Linux).
    This process sleeps while it looks, so its own work is not counted."""
    try:
        before = _read_proc_stat(path)
        time.sleep(seconds)
        after = _read_proc_stat(path)
    except (OSError, ValueError):
        return None
    cpus = cpus if cpus is not None else (_cpu_ids() or set(after))
    total = 0.0
    for cpu in cpus & set(before) & set(after):
        busy, ticks = (a - b for a, b in zip(after[cpu], before[cpu]))
        total += busy / ticks if ticks > 0 else 0.0
    return total


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, else every core):
    what training uses by default and what a sweep divides among its jobs."""
    return len(_cpu_ids() or ()) or os.cpu_count() or 1


def intended_threads(environ=os.environ) -> int:
    """The threads training will use (:func:`bssvae.train.configure_threads`): ``BSSVAE_THREADS``
    when it is a positive integer, otherwise every core this process may run on."""
    cores = available_cores()
    try:
        n = int(environ.get("BSSVAE_THREADS", "").strip() or 0)
    except ValueError:
        n = 0  # refused later, by configure_threads, with the variable named
    return n if n > 0 else cores


def decide(environ=os.environ, torch_imported: bool | None = None, sampler=busy_cores) -> dict:
    """Choose the waiting policy and set ``OMP_WAIT_POLICY`` in ``environ`` when it is passive.

    Returns a record: ``mode`` (the value of ``BSSVAE_OMP_WAIT``), ``wait`` (``"spin"``,
    ``"passive"``, ``"environment"`` when OpenMP's own variables were set, ``"torch imported first"``
    when it was too late to choose), ``reason``, and for ``auto`` the ``busy_cores`` seen, the
    ``cpus`` and the ``threads`` they were compared with. An unknown mode is recorded under ``error``
    (the import must not fail; :func:`bssvae.train.configure_threads` raises it) and waits passively.
    """
    mode = environ.get(ENV, "").strip().lower() or "auto"
    record: dict = {"mode": mode}
    if mode not in MODES:
        record["error"] = f"{ENV}: expected one of {', '.join(MODES)}, got {environ[ENV]!r}"
        mode = "passive"
    torch_imported = "torch" in sys.modules if torch_imported is None else torch_imported
    preset = {k: environ[k] for k in OPENMP_VARIABLES if k in environ}
    if torch_imported:
        return {**record, "wait": "torch imported first", "environment": preset,
                "reason": "PyTorch was imported before bssvae, so OpenMP had already read its variables"}
    if preset:
        return {**record, "wait": "environment", "environment": preset,
                "reason": "OpenMP's own variables were set, so bssvae left the waiting to them"}
    if mode == "auto":
        cpus = available_cores()
        threads = intended_threads(environ)
        record.update(cpus=cpus, threads=threads)
        if threads <= 1:
            mode, record["reason"] = "passive", "one thread has no other thread to wait for"
        else:
            busy = sampler()
            record["busy_cores"] = None if busy is None else round(busy, 2)
            free_after_ours = max(0, cpus - threads)
            if busy is None:
                mode, record["reason"] = "passive", "the cores' load could not be read (no /proc/stat)"
            elif busy <= free_after_ours + BUSY_SLACK:
                mode = "spin"
                record["reason"] = (f"{busy:.2f} of {cpus} cores were busy over {SAMPLE_SECONDS:g} s, "
                                    f"leaving the {threads} cores our threads need idle")
            else:
                mode = "passive"
                record["reason"] = (f"{busy:.2f} of {cpus} cores were busy over {SAMPLE_SECONDS:g} s, "
                                    f"so our {threads} threads would share cores with other work")
    else:
        record["reason"] = f"{ENV}={mode}"
    if mode == "passive":
        environ["OMP_WAIT_POLICY"] = "PASSIVE"
    record["wait"] = mode
    return record


def summary() -> dict:
    """:data:`DECISION` with the OpenMP variables in effect, for a run's provenance."""
    return {**DECISION, "variables": {k: os.environ[k] for k in OPENMP_VARIABLES if k in os.environ}}


def check() -> None:
    """Raise the error of an unknown ``BSSVAE_OMP_WAIT`` (recorded at import, when raising would
    have broken ``import bssvae``)."""
    if DECISION.get("error"):
        from .errors import BssvaeError

        raise BssvaeError(DECISION["error"])
