"""How a CPU sweep should share the cores: one run on every core, or one run per core.

Usage: python results/ablations/sweep-concurrency/concurrency.py OUT.json [--rounds 5] [--window 10]

A sweep (``bssvae sweep``, ``jobs: {cpu: N}``) runs N trainings at a time with cores / N threads
each. Four child processes (bench.worker.StepWorker) hold the `cpu` profile's step (fp32, batch
256): one on every core with its threads spinning (GOMP_SPINCOUNT=300000, OpenMP's default, what
``BSSVAE_OMP_WAIT=auto`` keeps on idle cores), one on every core waiting passively, and two on one
thread each (BSSVAE_THREADS=1). Each round times a window of the first alone, then of the second
alone, then of the two one-thread processes at the same time, their mixtures per second added: the
throughput of a sweep with jobs = 1 and with jobs = cores (2 on this machine). Nothing else runs;
the processes that are not timed wait on their pipes.
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import bench  # noqa: E402,F401  (passive waiting before torch starts, unless a child's env says otherwise)
from bench.worker import StepWorker  # noqa: E402
from bssvae.config import make_config  # noqa: E402
from bssvae.openmp import available_cores  # noqa: E402
from bssvae.results import atomic_write_json, provenance  # noqa: E402

CORES = available_cores()
SETTINGS = {f"1 run x {CORES} threads, spinning": {"GOMP_SPINCOUNT": "300000"},
            f"1 run x {CORES} threads, passive": {},
            "1 thread, a": {"BSSVAE_THREADS": "1"}, "1 thread, b": {"BSSVAE_THREADS": "1"}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--window", type=float, default=10.0)
    args = p.parse_args()
    if CORES != 2:
        raise SystemExit(f"this measurement pairs two one-thread runs, for 2 cores; this process may use {CORES}")
    started, t0 = dt.datetime.now(dt.timezone.utc).isoformat(), time.perf_counter()
    config = make_config("cpu", "mnist", "vae", 2, device="cpu", precision="fp32", epochs=10 ** 6)
    workers = {name: StepWorker(config, env) for name, env in SETTINGS.items()}
    rows = []
    try:
        for r in range(args.rounds):
            for name in list(SETTINGS)[:2]:
                rows.append({"round": r, "setting": name, "mixtures_per_s": workers[name].window("ours", args.window)})
                print(rows[-1], flush=True)
            pair = {}
            threads = [threading.Thread(target=lambda n=n: pair.__setitem__(n, workers[n].window("ours", args.window)))
                       for n in list(SETTINGS)[2:]]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rows.append({"round": r, "setting": f"{CORES} runs x 1 thread, at once", "per_run": pair,
                         "mixtures_per_s": sum(pair.values())})
            print(rows[-1], flush=True)
    finally:
        for w in workers.values():
            w.close()
    medians = {s: statistics.median(x["mixtures_per_s"] for x in rows if x["setting"] == s)
               for s in dict.fromkeys(x["setting"] for x in rows)}
    atomic_write_json(args.out, {
        "what": __doc__.split("\n\n")[1].replace("\n", " "),
        "medians_mixtures_per_s": medians, "rows": rows,
        "provenance": provenance("cpu", started_at=started, wall_seconds=round(time.perf_counter() - t0, 1),
                                 config=config.to_dict(), rounds=args.rounds, window_seconds=args.window),
    })


if __name__ == "__main__":
    main()
