"""Does bf16 autocast learn what float32 learns, on a CPU that computes bf16 natively?

Usage: python results/ablations/bf16-cpu/parity.py OUT_DIR [--epochs 17] [--seeds 0 1]

For each seed, the `cpu` profile's MNIST VAE (K = 2) is trained twice on this CPU with the same
recipe, data order and initial weights, once in float32 and once in bf16 (``precision="bf16"``:
autocast for the matrix products, weights and optimizer in float32), and each is scored on the
5,000 test mixtures as `bssvae train` scores it. `precision="auto"`, the `cpu` profile's, picks
bf16 on such a CPU; this is the measurement behind that default there. Each run's small files
(config, loss history, metrics, provenance) are kept in ``OUT_DIR/<precision>-seed<seed>/``; the
weights and checkpoints are deleted. ``OUT_DIR/parity.json`` has every row, the differences, the
speed-up of the whole run, the command, commit, versions, machine and wall time.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import bench  # noqa: E402,F401  (passive waiting before torch starts, as the library's processes)
from bssvae.config import make_config  # noqa: E402
from bssvae.errors import BssvaeError  # noqa: E402
from bssvae.results import atomic_write_json, git_commit, hardware, package_versions  # noqa: E402
from bssvae.train import cpu_has_native_bf16, train  # noqa: E402

PRECISIONS = ("fp32", "bf16")
KEEP = ("config.json", "history.csv", "metrics.json", "provenance.json")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--epochs", type=int, default=17)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = p.parse_args()
    if not cpu_has_native_bf16():
        raise BssvaeError("parity.py: this CPU has no native bf16 (AVX512-BF16 or AMX); bf16 would run "
                          "~15x slower than float32 here and the comparison would say nothing about speed")
    started, t0 = dt.datetime.now(dt.timezone.utc).isoformat(), time.perf_counter()
    commit = git_commit()
    rows = []
    for seed in args.seeds:
        for precision in PRECISIONS:
            # One recipe in both precisions (the cpu profile's fp32 one, which both used when this ran
            # at commit 6897731; the profile now gives bf16 a recipe of its own, PRECISION_RECIPES).
            config = make_config("cpu", "mnist", "vae", 2, seed=seed, epochs=args.epochs, precision=precision,
                                 batch_size=256, lr=1e-3, device="cpu")
            run_dir = args.out / f"{precision}-seed{seed}"
            result = train(config, run_dir, progress=False, write_results=False)
            for f in run_dir.iterdir():
                if f.name not in KEEP:
                    f.unlink()
            for r in result["rows"]:
                rows.append({"seed": seed, "precision": precision, **{k: r[k] for k in (
                    "method", "epochs", "psnr", "psnr_halved", "ssim", "ssim_halved", "train_seconds")}})
                print(rows[-1], flush=True)
    diffs = []
    for seed in args.seeds:
        for method in ("vae", "vaem"):
            a, b = (next(r for r in rows if r["seed"] == seed and r["precision"] == pr and r["method"] == method)
                    for pr in PRECISIONS)
            diffs.append({"seed": seed, "method": method, **{f"{k}_bf16_minus_fp32": b[k] - a[k] for k in (
                "psnr", "psnr_halved", "ssim", "ssim_halved")}, "speedup": a["train_seconds"] / b["train_seconds"]})
    atomic_write_json(args.out / "parity.json", {
        "what": __doc__.split("\n\n")[0], "rows": rows, "bf16_minus_fp32": diffs,
        "command": " ".join(["python", *sys.argv]), "commit": commit, "started_at": started,
        "wall_seconds": round(time.perf_counter() - t0, 1), "versions": package_versions(),
        "hardware": hardware("cpu"), "settings": {"epochs": args.epochs, "seeds": args.seeds, "profile": "cpu"}})


if __name__ == "__main__":
    main()
