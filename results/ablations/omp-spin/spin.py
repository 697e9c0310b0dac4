"""How OpenMP's waiting at barriers moves our step and the authors' loop, on an idle CPU and beside a busy process.

Usage: python results/ablations/omp-spin/spin.py OUT.json [--rounds 3] [--window 8] [--one-thread]

Three child processes (bench.worker.StepWorker) hold the cpu profile's step (fp32, batch 256)
and the authors'-style loop: one with the library's passive waiting (OMP_WAIT_POLICY=PASSIVE, set
by bssvae and bench before torch starts), two whose threads spin GOMP_SPINCOUNT times before
sleeping (10,000, and libgomp's default of 300,000; GOMP_SPINCOUNT takes precedence over the
policy). Each round times one window of each loop in each child, first with the machine otherwise
idle, then beside one busy single-threaded process (a Python loop), so that every setting sees
the same conditions. Only one child computes at a time; the others wait on their pipes. With
--one-thread, a fourth child runs both loops on one thread (BSSVAE_THREADS=1; no barriers to wait at).
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import bench  # noqa: E402,F401  (passive waiting before torch starts)
from bench.worker import TRAINERS, StepWorker  # noqa: E402
from bssvae.config import make_config  # noqa: E402
from bssvae.results import atomic_write_json, git_commit, hardware, package_versions  # noqa: E402

SETTINGS = {"passive": {}, "spin 10000": {"GOMP_SPINCOUNT": "10000"}, "spin 300000": {"GOMP_SPINCOUNT": "300000"}}
ONE_THREAD = {"1 thread": {"BSSVAE_THREADS": "1"}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--window", type=float, default=8.0)
    p.add_argument("--one-thread", action="store_true", help="also time both loops on one thread")
    args = p.parse_args()
    settings = {**SETTINGS, **(ONE_THREAD if args.one_thread else {})}
    started, t0 = dt.datetime.now(dt.timezone.utc).isoformat(), time.perf_counter()
    config = make_config("cpu", "mnist", "vae", 2, device="cpu", precision="fp32", epochs=10 ** 6)
    workers = {name: StepWorker(config, env) for name, env in settings.items()}
    rows = []
    try:
        for r in range(args.rounds):
            for load in ("idle", "one busy process"):
                hog = (subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load != "idle" else None)
                try:
                    for name, w in workers.items():
                        for trainer in TRAINERS:
                            rows.append({"round": r, "load": load, "setting": name, "env": settings[name],
                                         "trainer": trainer, "mixtures_per_s": w.window(trainer, args.window)})
                            print(rows[-1], flush=True)
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()
    finally:
        for w in workers.values():
            w.close()
    medians = {}
    for load in ("idle", "one busy process"):
        for name in settings:
            m = {t: statistics.median(x["mixtures_per_s"] for x in rows
                                      if (x["load"], x["setting"], x["trainer"]) == (load, name, t)) for t in TRAINERS}
            medians[f"{load} | {name}"] = {**m, "ours_over_authors": m["ours"] / m["authors"]}
    atomic_write_json(args.out, {
        "what": __doc__.split("\n\n")[1].replace("\n", " "),
        "medians_mixtures_per_s": medians, "rows": rows,
        "provenance": {"command": " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]), "commit": git_commit(),
                       "started_at": started, "wall_seconds": round(time.perf_counter() - t0, 1),
                       "config": config.to_dict(), "rounds": args.rounds, "window_seconds": args.window,
                       "versions": package_versions(), "hardware": hardware("cpu")},
    })


if __name__ == "__main__":
    main()
