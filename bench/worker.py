"""Our step and the authors'-style loop, timed in a child process started with other OpenMP settings.

OpenMP reads its waiting policy once, when PyTorch starts its threads, so a process cannot time
its step under two policies. The suite (:func:`bench.run.measure_throughput`) therefore starts one
child with, say, ``GOMP_SPINCOUNT=10000`` (threads spin that many times at a barrier before
sleeping; it takes precedence over ``OMP_WAIT_POLICY``), builds the same two trainers there, and
asks it for one throughput window of each, in turn with its own windows, repeat after repeat. Only
one process computes at a time: the other waits on a pipe, its threads asleep.

The protocol is one line each way: the parent sends the run's config and the names of the
variables it set as JSON, the child answers ``ready`` with its warm-up seconds and their values; then ``window NAME SECONDS`` answers ``{"mixtures_per_s": ...}``
and ``quit`` ends the child. Run ``python -m bench.worker`` only through :class:`StepWorker`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import bench  # noqa: F401  (sets the OpenMP policy before torch starts; GOMP_SPINCOUNT overrides it)
from bssvae.errors import BssvaeError
from bssvae.results import project_root

#: Names of the trainers a worker builds (:func:`timed_trainers`).
TRAINERS = ("ours", "authors")


def timed_trainers(config, task, device) -> dict:
    """The pair the suite times, built the same way in this process and in a worker: our trainer of
    ``config`` and the authors'-style loop on the same model and seed, from ``task``'s training digits."""
    from bench.authors import AuthorsTrainer
    from bench.ours import OursTrainer

    return {"ours": OursTrainer(config, task, device),
            "authors": AuthorsTrainer(task.train_images.cpu(), config.model, device, seed=config.seed)}


class StepWorker:
    """A child process holding our trainer and the authors', timed a window at a time.

    Args:
        config: the run of our trainer (a :class:`bssvae.config.TrainConfig`, ``epochs`` long enough
            for every window); the authors' loop gets its model and seed, as in the parent.
        env: environment variables set for the child, on top of this process's (e.g.
            ``{"GOMP_SPINCOUNT": "10000"}``).
        timeout_s: how long the child may take to start, or to answer one window.
    """

    def __init__(self, config, env: dict[str, str], timeout_s: float = 600.0):
        self.env = dict(env)
        self.timeout_s = timeout_s
        # stderr to a file, not a pipe: a child that writes more than a pipe holds would block on it
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.worker"], cwd=project_root(),
                                     env={**os.environ, **self.env, "PYTHONPATH": _pythonpath()},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, bufsize=1)
        ready = self._ask(json.dumps({"config": config.to_dict(), "env": sorted(self.env)}), "ready")
        self.warmup_seconds, self.fused_adam = ready["warmup_seconds"], ready["fused_adam"]
        if ready["env"] != self.env:  # e.g. a variable the child's start-up code overwrote
            self.close()
            raise BssvaeError(f"bench worker: started with {self.env}, its environment has {ready['env']}")

    def window(self, name: str, seconds: float) -> float:
        """Mixtures per second of trainer ``name`` over one window (:func:`bench.timing.throughput_window`)."""
        if name not in TRAINERS:
            raise BssvaeError(f"name: expected one of {TRAINERS}, got {name!r}")
        return self._ask(f"window {name} {float(seconds)}", "window")["mixtures_per_s"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ask(self, line: str, expect: str) -> dict:
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # the child is gone; its stderr says why, below
        answer = _readline(self.proc, self.timeout_s)
        if answer is None or not answer.startswith(expect + " "):
            self.proc.kill()
            self.proc.wait()
            self.stderr.seek(0)
            tail = "\n".join(self.stderr.read().strip().splitlines()[-15:])
            self.stderr.close()
            raise BssvaeError(f"bench worker ({' '.join(f'{k}={v}' for k, v in self.env.items())}): expected "
                              f"{expect!r}, got {answer!r}; its stderr ends:\n{tail}")
        return json.loads(answer[len(expect) + 1:])


def _pythonpath() -> str:
    """The child imports ``bench`` (a folder beside the package, not installed) from the project root."""
    parts = [str(project_root()), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return os.pathsep.join(dict.fromkeys(parts))


def _readline(proc: subprocess.Popen, timeout_s: float) -> str | None:
    """One line from the child's stdout, or None if it ended or took longer than ``timeout_s``."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            return None
    line = proc.stdout.readline()
    return line.rstrip("\n") if line else None


def serve(stdin=sys.stdin, stdout=sys.stdout) -> None:
    """The child's side: build the trainers from the first line, then answer windows until ``quit``."""
    import torch

    from bench.timing import throughput_window
    from bssvae.config import TrainConfig
    from bssvae.train import build_task, configure_threads

    request = json.loads(stdin.readline())
    config = TrainConfig.from_dict(request["config"])
    device = torch.device(config.device)
    if device.type == "cpu":
        configure_threads()
    task = build_task(config, device)
    trainers = timed_trainers(config, task, device)
    iters = {name: t.steps() for name, t in trainers.items()}
    t0 = time.perf_counter()
    for it in iters.values():  # first steps are not timed, as in the parent
        for _ in range(2):
            next(it)
    print("ready " + json.dumps({"warmup_seconds": round(time.perf_counter() - t0, 3),
                                 "env": {k: os.environ.get(k) for k in request["env"]},
                                 "fused_adam": bool(trainers["ours"].opt.defaults.get("fused"))}),
          file=stdout, flush=True)
    for line in stdin:
        words = line.split()
        if not words or words[0] == "quit":
            return
        if words[0] != "window" or len(words) != 3 or words[1] not in iters:
            raise BssvaeError(f"bench worker: expected 'window NAME SECONDS' or 'quit', got {line.strip()!r}")
        thr = throughput_window(iters[words[1]], float(words[2]), device)
        print("window " + json.dumps({"mixtures_per_s": thr}), file=stdout, flush=True)


if __name__ == "__main__":
    serve()
