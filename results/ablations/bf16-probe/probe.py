"""The bf16 probe of precision="auto" on an idle CPU and beside a busy process: the two-thread wall-clock probe
of commit 4d1088b and before, against bssvae.results.cpu_bf16_speedup (one thread, timed in its CPU time).

Usage: python results/ablations/bf16-probe/probe.py OUT.json [--processes 8]

Each probe runs once per fresh process, as in training, in a child that imports bssvae first with
BSSVAE_OMP_WAIT=passive or spin (bssvae.openmp: how torch's threads wait at their barriers; a run started on
idle cores spins, and keeps spinning if a busy process starts beside it later). Each child measures both
probes, in alternating order. For the busy condition a second process multiplies 1024 x 1024 matrices under
bf16 autocast on two threads, the load of a training run, from 2 s before the child starts until it ends.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

LOAD = """
import torch
torch.set_num_threads(2)
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
while True:  # until the parent kills it
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (a @ b).sum()
"""


def two_thread_wall_clock() -> float:
    """The probe as it was up to commit 4d1088b: the same step on torch's threads, timed on the wall clock."""
    from bssvae.results import bf16_step_ratio

    return bf16_step_ratio(one_thread=False)


def child(new_first: bool) -> None:
    from bssvae import openmp  # noqa: F401  (OpenMP's waiting as in a run, before torch starts)
    from bssvae.results import cpu_bf16_speedup
    from bssvae.train import configure_threads

    configure_threads()
    probes = {"two_thread_wall_clock": two_thread_wall_clock, "one_thread_cpu_time": cpu_bf16_speedup}
    out = {name: probes[name]() for name in (reversed(probes) if new_first else probes)}
    import torch
    out["torch_threads"] = torch.get_num_threads()
    out["openmp"] = openmp.summary()
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--processes", type=int, default=8)
    p.add_argument("--child", choices=["old-first", "new-first"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child == "new-first")
    from bssvae.openmp import OPENMP_VARIABLES
    from bssvae.results import atomic_write_json, git_commit, hardware, package_versions

    start = time.perf_counter()
    # the children choose their own waiting (this process may have set OpenMP's variables for itself)
    env = {k: v for k, v in os.environ.items() if k not in OPENMP_VARIABLES}
    probes = []
    for condition, wait in [(c, w) for c in ("idle", "busy") for w in ("passive", "spin")]:
        for i in range(args.processes):
            load = None
            if condition == "busy":
                load = subprocess.Popen([sys.executable, "-c", LOAD])
                time.sleep(2.0)
            try:
                order = "new-first" if i % 2 else "old-first"
                done = subprocess.run([sys.executable, __file__, str(args.out), "--child", order], check=True,
                                      capture_output=True, text=True, cwd=ROOT,
                                      env=dict(env, BSSVAE_OMP_WAIT=wait))
            finally:
                if load is not None:
                    load.kill()
                    load.wait()
            row = json.loads(done.stdout.strip().splitlines()[-1])
            probes.append(dict(condition=condition, wait=wait, order=order, **row))
            print(condition, wait, order, f"{row['two_thread_wall_clock']:.2f}", f"{row['one_thread_cpu_time']:.2f}", flush=True)
    command = "python " + " ".join([str(Path(__file__).resolve().relative_to(ROOT))] + sys.argv[1:])
    atomic_write_json(args.out, {
        "command": command, "commit": git_commit(ROOT), "hardware": hardware("cpu"), "versions": package_versions(),
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(), "wall_seconds": round(time.perf_counter() - start, 1),
        "load": "a second process: 1024 x 1024 matmuls under bf16 autocast on 2 threads",
        "probes": probes})


if __name__ == "__main__":
    main()
