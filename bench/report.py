"""Tables and a figure from ``results/bench.json`` and ``results/ablations/``, for the book's performance and
recipe-choices pages.

Everything here only reads the file the suite wrote; nothing is measured or assumed.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from bench.run import (REQUIRED_KEYS, THRESHOLDS_DB, carried_sections, median_of_paired_ratios,  # noqa: F401 (the book reads it here)
                       migrate_key, migrate_keys, peak_words)
from bench.timing import minutes_to
from bssvae.config import MUON_FIELDS, TrainConfig, optimizer_label, schedule_label
from bssvae.results import bf16_instructions, cpu_generation, read_history, read_run_rows


def bench_path(root: Path | None = None) -> Path:
    """``results/bench.json`` of the project (see :func:`bssvae.results.project_root`)."""
    from bssvae.results import project_root

    root = Path(root) if root is not None else project_root()
    if not (root / "bssvae").is_dir() and (root.parent / "bssvae").is_dir():  # run from book/
        root = root.parent
    return root / "results" / "bench.json"


#: Where the suite's one-hour budget lives: run separately from ``bench.json`` (whose budgets are 3, 5 and
#: 15 minutes) because the default 5, 15 and 60 minutes take about 2.5 hours; written by
#: ``python -m bench --minutes 60 ... --output results/bench-60min.json``.
LONG_RUN_FILE = "bench-60min.json"


def long_run_path(root: Path | None = None) -> Path:
    """``results/bench-60min.json`` of the project: the suite's run with a one-hour budget."""
    return bench_path(root).with_name(LONG_RUN_FILE)


def load(path: Path | None = None) -> dict | None:
    """The parsed bench.json, or None when it does not exist (or is unreadable); CPU entries keyed
    as the suite keys them now (:func:`bench.run.migrate_keys`)."""
    path = Path(path) if path is not None else bench_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return migrate_keys(data) if isinstance(data, dict) else data


def db_text(value: float, target: float = 22.0) -> str:
    """A score in dB as text: two decimals, or three where two would round it across ``target`` (21.997 dB
    would read 22.00, past a target it does not reach)."""
    two = f"{value:.2f}"
    return two if (float(two) >= target) == (value >= target) else f"{value:.3f}"


def listed(values, fmt: str = "") -> str:
    """Values as the book lists them, each formatted with ``fmt``: 'a', 'a and b', 'a, b and c'."""
    items = [format(v, fmt) for v in values]
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def recipe_words(cfg: dict, schedule: bool = False) -> str:
    """A run's recipe as the book words it, from its config (a dict, as a suite file or ``TrainConfig.to_dict`` holds
    it): optimizer (:func:`bssvae.config.optimizer_label`), precision, batch, peak learning rate, and with ``schedule``
    the learning-rate schedule (where two recipes differ only in it)."""
    return (f"{optimizer_label(cfg).capitalize()}, {cfg['precision']}, batch {cfg['batch_size']:,}, "
            f"lr {cfg['lr']:g}" + (f", {schedule_label(cfg)}" if schedule else ""))


def _num(v, scale=1.0, digits=2):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return int(round(v * scale)) if digits == 0 else round(v * scale, digits)


def summary_table(data: dict) -> pd.DataFrame:
    """One row per device: the five required keys and how the run was set up."""
    rows = []
    for key, e in data.get("devices", {}).items():
        s = e.get("settings", {})
        row = {"device": key, "measured": (e.get("measured_at") or "")[:16].replace("T", " "),
               "commit": (e.get("commit") or "")[:12], "recipe": s.get("summary"),
               "budgets (min)": ", ".join(f"{m:g}" for m in s.get("minutes", []))}
        for k in REQUIRED_KEYS:
            row[k] = _num(e.get(k), digits=3)
        rows.append(row)
    return pd.DataFrame(rows).set_index("device") if rows else pd.DataFrame()


def throughput_table(entry: dict) -> pd.DataFrame:
    """Ours, the authors'-style loop and the variants: mixtures/s, GFLOP/s, fraction of the matmul peak."""
    thr = entry.get("throughput")
    if not thr:
        return pd.DataFrame()
    rows = []

    def add(label, r, authors=thr["authors"]):
        rows.append({"loop": label, "precision": r["precision"], "batch (mixtures)": r["batch_size"],
                     "mixtures/s (median)": _num(r["mixtures_per_s"], digits=0),
                     "GFLOP/s": _num(r["achieved_flops_per_s"], 1e-9, 1),
                     "of matmul peak (%)": _num(r["peak_fraction"], 100, 1),
                     "fused Adam": {True: "yes", False: "no"}.get(r.get("fused_adam"), ""),
                     "vs authors-style": _num(r["mixtures_per_s"] / authors["mixtures_per_s"], digits=2)})

    add("ours (profile)", thr["ours"])
    add("authors-style (per-item DataLoader)", thr["authors"])
    for v in thr.get("variants", []):
        add(f"variant {v['name']}", v)
    sp = thr.get("spinning")
    if sp:  # against the authors' loop under the same spinning threads
        env = ", ".join(f"{k}={v}" for k, v in sp["env"].items())
        add(f"ours, threads spinning ({env})", sp["ours"], sp["authors"])
        add(f"authors-style, threads spinning ({env})", sp["authors"], sp["authors"])
    return pd.DataFrame(rows).set_index("loop")


def peak_table(entry: dict) -> pd.DataFrame:
    thr = entry.get("throughput")
    if not thr:
        return pd.DataFrame()
    return pd.DataFrame([{"dtype": dt, "n": p["n"], "op": p.get("op", "matmul"),
                          "best GFLOP/s": _num(p["max_flops_per_s"], 1e-9, 1),
                          "median GFLOP/s": _num(p["median_flops_per_s"], 1e-9, 1)}
                         for dt, p in thr["matmul_peak"].items()]).set_index("dtype")


def breakdown_table(entry: dict) -> pd.DataFrame:
    """Where our step's time goes (``throughput.step_breakdown``): milliseconds per step and share of
    the step for the matrix products, the other operators that took the most time, and the rest.

    The other operators' times are as the profiler saw them; it slows the small operators it records,
    so the shares are of the profiled step, and "everything else" includes the profiler's own cost."""
    br = (entry.get("throughput") or {}).get("step_breakdown") or {}
    if "matmul_share" not in br:
        return pd.DataFrame()
    step = br["profiled_step_seconds"]
    rows = [("matrix products (`aten::mm`, `aten::addmm`)", br["matmul_seconds_per_step"])]
    rows += [(f"`{name}`", sec) for name, sec in  # as code: names like aten::_fused_adam_ are not Markdown
             sorted(br["top_other_ops_seconds_per_step"].items(), key=lambda kv: -kv[1])]  # bench.json sorts keys
    rows.append(("everything else (Python, smaller operators, the profiler)", step - sum(s for _, s in rows)))
    return pd.DataFrame([{"operator": name, "ms per step": _num(s, 1e3, 2), "of the step (%)": _num(s / step, 100, 1)}
                         for name, s in rows]).set_index("operator")


def quality_table(entry: dict) -> pd.DataFrame:
    """VAEM PSNR (ours / halved column) after each budget, and minutes to the thresholds, per recipe."""
    q = entry.get("quality")
    if not q:
        return pd.DataFrame()
    rows = []
    for recipe in ("ours", "authors"):
        r = q.get(recipe)
        if not r:
            continue
        row = {"recipe": recipe}
        for m in q["budgets_minutes"]:
            row[f"PSNR after {m:g} min"] = _num(r["psnr_after_minutes"].get(f"{m:g}"))
            row[f"halved after {m:g} min"] = _num(r["psnr_halved_after_minutes"].get(f"{m:g}"))
            row[f"epochs in {m:g} min"] = _epochs_at(r.get("runs", []), m)
        for name, thr in THRESHOLDS_DB.items():
            row[f"minutes to {thr} dB"] = r["minutes_to_db"].get(name)
        rows.append(row)
    return pd.DataFrame(rows).set_index("recipe")


def loop_and_batch(entry: dict) -> dict | None:
    """Our gain over the authors'-style loop split in two: our loop at their batch (the fp32 variant of
    their batch size, default threads, not compiled) over theirs, and our profile's batch over that.
    None when the entry has no such variant."""
    thr = entry.get("throughput") or {}
    if not thr:
        return None
    same = next((v for v in thr.get("variants", [])
                 if v["batch_size"] == thr["authors"]["batch_size"] and v["precision"] == "fp32"
                 and not v.get("compile") and v.get("threads") in (None, thr.get("threads"))), None)
    if same is None:
        return None
    return {"variant": same["name"], "loop": same["mixtures_per_s"] / thr["authors"]["mixtures_per_s"],
            "batch": thr["ours"]["mixtures_per_s"] / same["mixtures_per_s"]}


def _epochs_at(runs: list[dict], minutes: float) -> str:
    """Epochs trained by the budget's mark: of the run fitted to that budget ('done of planned'), or of
    the single run of a recipe that does not depend on its length."""
    fitted = [r for r in runs if "epochs_planned" in r and math.isclose(r.get("budget_minutes", -1), minutes)]
    run = fitted[0] if fitted else (runs[0] if len(runs) == 1 else None)
    if run is None:
        return ""
    row = next((c for c in run.get("curve", []) if math.isclose(c["target_s"], minutes * 60.0)), None)
    if row is None:
        return ""
    return f"{row['epoch']:.1f}" + (f" of {run['epochs_planned']}" if fitted else "")


def other_table(entry: dict) -> pd.DataFrame:
    """Inference and the audio model."""
    rows = []
    inf = entry.get("inference")
    if inf:
        rows.append({"measurement": f"separate the {inf['n_mixtures']} test mixtures (VAEM)",
                     "value": _num(inf["seconds_median"], digits=3), "unit": "s"})
    au = entry.get("audio") or {}
    if "skipped" in au:
        rows.append({"measurement": "audio model", "value": None, "unit": au["skipped"]})
    for which, r in au.items():
        if not isinstance(r, dict):
            continue
        label = "Table I audio model" if which == "table1" else "the profile's audio model"
        if "skipped" in r:
            rows.append({"measurement": label, "value": None, "unit": r["skipped"]})
            continue
        dims = f"{r['input_dim']}-{'-'.join(map(str, r['hidden_dims']))}, {r['parameters'] / 1e6:.1f} M parameters"
        rows.append({"measurement": f"{label} ({dims}), batch {r['batch_size']}, {r['precision']}",
                     "value": _num(r["mixtures_per_s"], digits=1), "unit": "mixtures/s"})
        rows.append({"measurement": f"{label}: peak memory", "value": _num(r["peak_memory_mib"], digits=0),
                     "unit": f"MiB ({r['memory_kind']})"})
    return pd.DataFrame(rows).set_index("measurement") if rows else pd.DataFrame()


def plot_curves(curves: dict[str, pd.DataFrame], ax, baseline: dict | None = None, styles=None):
    """VAEM PSNR (our column) against training minutes, one line per labelled curve (the frames of
    :func:`recipe_curve`); ``baseline`` is the suite's ``baseline_half_mixture`` (a horizontal line)."""
    for i, (label, c) in enumerate(curves.items()):
        ax.plot(c["minutes"], c["psnr"], styles[i] if styles else "-", marker=".", label=label)
    if baseline:
        ax.axhline(baseline["psnr"], color="black", lw=0.8, ls="-.", label="no separation (x/2 each)")
    ax.set_xlabel("training minutes (evaluation excluded)")
    ax.set_ylabel("VAEM PSNR, our column (dB)")
    ax.legend(fontsize=7)
    return ax


def plot_quality(entry: dict, ax=None):
    """VAEM PSNR (our column) against training minutes, one line per run of each recipe."""
    import matplotlib.pyplot as plt

    q = entry.get("quality") or {}
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.6))
    curves = run_curves(entry)
    styles = ["-" if label.startswith("ours,") else "--" for label in curves]
    for thr in THRESHOLDS_DB.values():
        ax.axhline(thr, color="grey", lw=0.8, ls=":")
    return plot_curves(curves, ax, q.get("baseline_half_mixture"), styles)


def fp32_peak(entry: dict) -> float | None:
    """The best float32 matrix-product FLOP/s a suite entry measured (None if it did not)."""
    peak = ((entry.get("throughput") or {}).get("matmul_peak") or {}).get("float32")
    return peak["max_flops_per_s"] if peak else None


def load_ablation(name: str, root: Path | None = None) -> dict | None:
    """A kept suite entry from ``results/ablations/<name>.json`` (see its README), or None."""
    path = bench_path(root).parent / "ablations" / f"{name}.json"
    try:
        kept = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if isinstance(kept, dict) and isinstance(kept.get("device"), str):  # keyed as bench.json's entries
        kept = {**kept, "device": migrate_key(kept["device"], kept.get("entry"))}
    return kept


def ema_table(name: str = "ema-cpu-mnist-K2-seed0", root: Path | None = None) -> pd.DataFrame:
    """The kept EMA ablation (``results/ablations/<name>/ema.json``): VAEM PSNR (our column / halved)
    of the raw weights and of each moving average, one row per evaluated epoch; empty when absent."""
    path = bench_path(root).parent / "ablations" / name / "ema.json"
    try:
        rows = json.loads(path.read_text())["rows"]
    except (OSError, json.JSONDecodeError, KeyError):
        return pd.DataFrame()
    out = []
    for r in rows:
        row = {"epoch": r["epoch"], "train minutes": round(r["train_s"] / 60, 1)}
        for key, v in r.items():
            if isinstance(v, list):
                row["raw weights" if key == "raw" else f"EMA {key}"] = f"{v[0]:.2f} / {v[1]:.2f}"
        out.append(row)
    return pd.DataFrame(out).set_index("epoch")


def spin_table(root: Path | None = None, name: str = "spin.json") -> tuple[pd.DataFrame, dict]:
    """A kept ablation of OpenMP's waiting (``results/ablations/omp-spin/<name>``, one machine each):
    median mixtures/s of our step and the authors' loop per machine load and setting, with their
    ratio and each loop's speed against passive waiting under the same load; and the file's
    provenance. Both empty when absent."""
    path = bench_path(root).parent / "ablations" / "omp-spin" / name
    try:
        data = json.loads(path.read_text())
        medians = data["medians_mixtures_per_s"]
    except (OSError, json.JSONDecodeError, KeyError):
        return pd.DataFrame(), {}
    out = []
    for key, m in medians.items():
        load, setting = key.split(" | ")
        passive = medians[f"{load} | passive"]
        out.append({"machine": load, "OpenMP threads at a barrier": setting,
                    "ours (mixtures/s)": _num(m["ours"], digits=0),
                    "authors-style (mixtures/s)": _num(m["authors"], digits=0),
                    "ours / authors": _num(m["ours_over_authors"], digits=2),
                    "ours vs passive": _num(m["ours"] / passive["ours"], digits=2),
                    "authors vs passive": _num(m["authors"] / passive["authors"], digits=2)})
    return pd.DataFrame(out).set_index(["machine", "OpenMP threads at a barrier"]), data["provenance"]


def concurrency_table(root: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """The kept ablation of how a CPU sweep shares the cores
    (``results/ablations/sweep-concurrency/concurrency.json``): per setting, the median mixtures/s of
    the `cpu` profile's step summed over the runs computing at once, and its speed against one run on
    every core with its threads spinning and waiting passively; and the file's provenance. Both empty
    when absent."""
    path = bench_path(root).parent / "ablations" / "sweep-concurrency" / "concurrency.json"
    try:
        data = json.loads(path.read_text())
        medians = data["medians_mixtures_per_s"]
        spinning = next(v for k, v in medians.items() if k.startswith("1 run") and k.endswith("spinning"))
        passive = next(v for k, v in medians.items() if k.startswith("1 run") and k.endswith("passive"))
    except (OSError, json.JSONDecodeError, KeyError, StopIteration):
        return pd.DataFrame(), {}
    out = [{"setting": k, "mixtures/s (all runs)": _num(v, digits=0), "vs one run, spinning": _num(v / spinning, digits=2),
            "vs one run, passive": _num(v / passive, digits=2)} for k, v in sorted(medians.items(), key=lambda kv: kv[1])]
    return pd.DataFrame(out).set_index("setting"), data["provenance"]


#: The runs of the torch.compile ablation (results/ablations/compile-threads/): how OpenMP's threads waited.
COMPILE_RUNS = {"passive": "passive.json", "spinning": "spinning.json"}


def compile_table(root: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """The kept ablation of ``torch.compile`` under both ways of waiting
    (``results/ablations/compile-threads/``: one throughput-only run of the suite per way, its fp32 step
    at batch 256, 512 and 1024, eager and compiled): per waiting and batch, the median mixtures/s of
    each and the median over repeats of compiled over eager (each repeat times both); and per run its
    device key, command, commit, repeats and spin count. Both empty when a run is absent. The
    variants' warm-up times are left out: TorchInductor's cache on that machine was warm from earlier
    compilations of the same step, so they do not show a first compilation's cost."""
    folder = bench_path(root).parent / "ablations" / "compile-threads"
    out, runs = [], {}
    try:
        for wait, name in COMPILE_RUNS.items():
            (key, e), = migrate_keys(json.loads((folder / name).read_text()))["devices"].items()
            thr = e["throughput"]
            runs[wait] = {"device": key, "command": e["command"], "commit": e["commit"], "repeats": thr["repeats"],
                          "gomp_spincount": e["settings"].get("gomp_spincount")}
            steps = {(v["batch_size"], v["compile"]): v for v in thr["variants"] if v["precision"] == "fp32"
                     and v.get("threads", thr["threads"]) == thr["threads"] and v.get("fused_adam", True)}
            steps.setdefault((thr["ours"]["batch_size"], False), thr["ours"])
            for batch in sorted({b for b, c in steps if c}):
                eager, compiled = steps[(batch, False)], steps[(batch, True)]
                out.append({"threads wait": wait, "batch": batch,
                            "eager (mixtures/s)": _num(eager["mixtures_per_s"], digits=0),
                            "compiled (mixtures/s)": _num(compiled["mixtures_per_s"], digits=0),
                            "compiled / eager": _num(median_of_paired_ratios(compiled["samples_mixtures_per_s"],
                                                                             eager["samples_mixtures_per_s"]), digits=2)})
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return pd.DataFrame(), {}
    return pd.DataFrame(out).set_index(["threads wait", "batch"]), runs


def variant_gains(entry: dict) -> pd.DataFrame:
    """The variants of a suite entry's throughput section against its own step: per variant, median
    mixtures/s, fraction of the matmul peak of its precision, the median over repeats of its speed over
    our step (each repeat times both) and its warm-up seconds (a compile variant's compilation); empty
    when the entry has no variants."""
    thr = (entry or {}).get("throughput") or {}
    ours, rows = thr.get("ours"), []
    for v in thr.get("variants", []):
        rows.append({"step": v["name"], "mixtures/s (median)": _num(v["mixtures_per_s"], digits=0),
                     "of matmul peak (%)": _num(v["peak_fraction"], 100, 1),
                     f"vs {ours['precision']}:{ours['batch_size']} (median of repeats)":
                         _num(median_of_paired_ratios(v["samples_mixtures_per_s"], ours["samples_mixtures_per_s"]), digits=2),
                     "warm-up (s)": _num(v.get("warmup_seconds"), digits=1)})
    return pd.DataFrame(rows).set_index("step") if rows else pd.DataFrame()


def parity_table(root: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """The kept bf16-against-float32 ablation (``results/ablations/bf16-cpu/parity.json``): per seed
    and output (VAE, VAEM), PSNR and SSIM of each precision (our column / halved), bf16's difference
    and its speed-up over the whole run; and the file's provenance (everything but its rows). Both
    empty when absent."""
    path = bench_path(root).parent / "ablations" / "bf16-cpu" / "parity.json"
    try:
        data = json.loads(path.read_text())
        rows = {(r["seed"], r["method"], r["precision"]): r for r in data["rows"]}
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return pd.DataFrame(), {}
    out = []
    for d in data["bf16_minus_fp32"]:
        a, b = rows[(d["seed"], d["method"], "fp32")], rows[(d["seed"], d["method"], "bf16")]
        out.append({"seed": d["seed"], "output": d["method"].upper(),
                    "PSNR fp32 (dB)": f"{a['psnr']:.2f} / {a['psnr_halved']:.2f}",
                    "PSNR bf16 (dB)": f"{b['psnr']:.2f} / {b['psnr_halved']:.2f}",
                    "bf16 - fp32 (dB)": _num(d["psnr_bf16_minus_fp32"], digits=3),
                    "SSIM fp32": f"{a['ssim']:.3f} / {a['ssim_halved']:.3f}",
                    "SSIM bf16": f"{b['ssim']:.3f} / {b['ssim_halved']:.3f}",
                    "training minutes fp32 / bf16": f"{a['train_seconds'] / 60:.1f} / {b['train_seconds'] / 60:.1f}",
                    "bf16 speed-up": _num(d["speedup"], digits=2)})
    return pd.DataFrame(out).set_index(["seed", "output"]), {k: v for k, v in data.items() if k != "rows"}


def gap_table(root: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The kept generalization-gap ablation (``results/ablations/generalization-gap/gap.json``).

    Returns three things, all empty when the file is absent: per model (profile, K, seed, epochs) and
    set of 5,000 mixtures, the negative ELBO (one sample, per mixture) and PSNR / SSIM (our column /
    halved) of VAEM and of VAEM with refined latents; per model, training digits minus test digits
    (the mean of its training sets against its test set) for the same numbers; and the file's
    provenance (everything but its rows).
    """
    path = bench_path(root).parent / "ablations" / "generalization-gap" / "gap.json"
    try:
        data = json.loads(path.read_text())
        rows = data["rows"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return pd.DataFrame(), pd.DataFrame(), {}

    def model(r):
        return f"{r.get('profile', '?')}, K = {r['n_sources']}, seed {r['seed']}, {r['epochs']} epochs"

    def numbers(r):
        v, f = r["scores"]["vaem"], r["scores"]["vaem-refined"]
        return {"negative ELBO": r["objective"]["negative elbo, one sample"],
                "VAEM PSNR": (v["psnr"], v["psnr_halved"]), "VAEM SSIM": (v["ssim"], v["ssim_halved"]),
                "refined VAEM PSNR": (f["psnr"], f["psnr_halved"])}

    out, gaps = [], []
    for name in dict.fromkeys(model(r) for r in rows):
        mine = [r for r in rows if model(r) == name]
        test = [numbers(r) for r in mine if r["set"].startswith("test")]
        train = [numbers(r) for r in mine if r["set"].startswith("training")]
        for r in mine:
            n = numbers(r)
            out.append({"model": name, "mixtures of": r["set"], "negative ELBO": _num(n["negative ELBO"]),
                        "VAEM PSNR (dB)": "{:.2f} / {:.2f}".format(*n["VAEM PSNR"]),
                        "VAEM SSIM": "{:.3f} / {:.3f}".format(*n["VAEM SSIM"]),
                        "refined VAEM PSNR (dB)": "{:.2f} / {:.2f}".format(*n["refined VAEM PSNR"])})
        if len(test) == 1 and train:
            (t,) = test

            def diff(key, i=0):
                return sum(n[key][i] if i is not None else n[key] for n in train) / len(train) - (
                    t[key][i] if i is not None else t[key])

            gaps.append({"model": name, "training sets": len(train),
                         "negative ELBO (%)": _num(100 * diff("negative ELBO", None) / t["negative ELBO"], digits=1),
                         "VAEM PSNR (dB)": _num(diff("VAEM PSNR")), "VAEM SSIM": _num(diff("VAEM SSIM"), digits=3),
                         "refined VAEM PSNR (dB)": _num(diff("refined VAEM PSNR"))})
    meta = {k: v for k, v in data.items() if k != "rows"}
    return (pd.DataFrame(out).set_index(["model", "mixtures of"]) if out else pd.DataFrame(),
            pd.DataFrame(gaps).set_index("model") if gaps else pd.DataFrame(), meta)


def _mnist_vae_k2_runs(base: Path, keep_under: Path | None = None):
    """The committed MNIST VAE runs with K = M = 2 under ``base`` (``results/``) that have a readable config, a
    loss history and a VAEM row: ``(run_dir, config, history, rows by method)``, the profiles' runs first. A run
    whose losses repeat an earlier run's exactly (a retrained run that reproduced a committed one) is left out; a run
    under ``keep_under`` (an ablation's folder, whose own table lists it) only where it repeats another run there."""
    import hashlib

    from bssvae.errors import BssvaeError
    from bssvae.results import read_history, read_run_rows
    from bssvae.train import read_run_config

    seen, seen_under = set(), set()
    for hist in sorted(base.rglob("history.csv"), key=lambda p: (p.parts[-3] != "runs", str(p))):
        try:
            cfg = read_run_config(hist.parent)
            history = pd.DataFrame(read_history(hist.parent))
            losses = history["loss"]
        except (BssvaeError, KeyError):  # RunDirError for a damaged history; KeyError for one without losses
            continue
        scores = {r.get("method"): r for r in read_run_rows(hist.parent) or []}
        if (cfg.task, cfg.method, cfg.n_sources, cfg.n_digits) != ("mnist", "vae", 2, 2) or "vaem" not in scores \
                or losses.empty:
            continue
        digest = hashlib.sha256(losses.to_numpy().tobytes()).hexdigest()
        under = keep_under is not None and hist.parent.is_relative_to(keep_under)
        if digest not in (seen_under if under else seen):
            seen.add(digest)
            if under:
                seen_under.add(digest)
            yield hist.parent, cfg, history, scores


def fit_table(root: Path | None = None, last_epochs: int = 5, beta: float | None = 0.5,
              optimizer: str | None = "adam") -> pd.DataFrame:
    """Every committed MNIST VAE run with K = M = 2 and a loss history under ``results/`` (the profiles'
    runs and the ablations'): its recipe, its training loss at the end (the mean of the negative ELBO over
    its last ``last_epochs`` epochs, as training logged it: training mode, one sample of z) and its VAEM PSNR
    on the test mixtures (our column). A run whose losses repeat an earlier run's exactly (a retrained run that
    reproduced a committed one; the profiles' runs come first) counts once. Only runs whose KL weight is
    ``beta`` (the paper's 0.5 by default; None: every weight), since a loss with another weight is another
    objective's, and that trained with ``optimizer`` (the authors' Adam by default; None: any). Empty when there
    is none."""
    base = bench_path(root).parent
    rows = []
    for run, cfg, history, scores in _mnist_vae_k2_runs(base):
        if (beta is not None and cfg.beta != beta) or (optimizer is not None and cfg.optimizer != optimizer):
            continue
        rows.append({"run": str(run.relative_to(base)), "profile": cfg.profile, "epochs": cfg.epochs,
                     "batch": cfg.batch_size, "lr": cfg.lr, "optimizer": cfg.optimizer,
                     "schedule": schedule_label(cfg.to_dict()),
                     "beta": cfg.beta, "beta warm-up (epochs)": cfg.beta_warmup_epochs, "precision": cfg.precision,
                     "seed": cfg.seed,
                     f"loss, last {last_epochs} epochs": round(float(history["loss"].tail(last_epochs).mean()), 2),
                     "VAEM PSNR (dB)": round(float(scores["vaem"]["psnr"]), 2)})
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


_RECIPE_FIELDS = ("profile", "task", "method", "n_sources", "n_digits", "epochs", "batch_size", "lr", "optimizer",
                  *MUON_FIELDS, "lr_schedule", "wsd_decay_fraction", "beta", "beta_warmup_epochs", "precision", "seed",
                  "budget_minutes")


def ablation_table(name: str, factor: str | tuple[str, ...], root: Path | None = None, last_epochs: int = 5,
                   reference=None) -> pd.DataFrame:
    """An ablation of one setting of the MNIST VAE runs (K = M = 2): the runs under ``results/ablations/<name>/`` (each
    of them, also one whose losses a run elsewhere repeats to the bit; a repeat within the folder counts once), and
    beside them the runs kept elsewhere under ``results/`` whose recipe differs from one of theirs only in
    ``factor`` (a field of the run config, e.g. ``"beta"`` or ``"epochs"``, or a tuple of fields set together, e.g.
    ``("lr", "muon_lr_scale")``), and, if ``reference`` is given, have that value of it (a tuple of values for a
    tuple of fields; a profile's run or another ablation's; a retrained copy counts once, the profiles' runs first;
    a recipe the folder already holds is not added again). Per run: the epochs it trained (fewer than its config's where
    a time budget, ``bssvae train --minutes``, ended it), seed, beta, optimizer, learning-rate schedule
    (:func:`bssvae.config.schedule_label`), batch, peak learning rate (Adam's, with Muon beside it), Muon's peak
    (``lr`` times ``muon_lr_scale``; NaN for Adam alone) and its weight decay (``muon_weight_decay``; NaN for Adam
    alone), budget (NaN where none), its training minutes, the
    objective and its two terms at the end (means over the last ``last_epochs`` epochs as training logged them: the
    negative ELBO, the Laplace reconstruction term and the unweighted KL divergence), how its OpenMP threads waited
    (``spin``, ``passive`` or ``not recorded``, which moves its minutes), the machine it trained on
    (:func:`_machine`; its minutes are that machine's) and the test scores of VAE and
    VAEM (PSNR and SSIM, our column and halved) and, where the run was scored with refined latents
    (``bssvae evaluate --refine-steps``), of refined VAEM and the seconds that scoring took (NaN where not), unrounded. Sorted by epochs, seed,
    beta and optimizer; empty when the folder has no such run."""
    factors = (factor,) if isinstance(factor, str) else tuple(factor)
    if not factors or not set(factors) <= set(_RECIPE_FIELDS):
        raise ValueError(f"factor must be one or more of {', '.join(_RECIPE_FIELDS)}, not {factor!r}")
    if reference is not None:
        reference = (reference,) if isinstance(factor, str) else tuple(reference)
    base = bench_path(root).parent
    folder = base / "ablations" / name

    def recipe(cfg, without: tuple = ()) -> tuple:
        return tuple(getattr(cfg, f) for f in _RECIPE_FIELDS if f not in without)

    runs = [r for r in _mnist_vae_k2_runs(base, keep_under=folder)
            if "vae" in r[3] and {"recon", "kl"} <= set(r[2].columns)]
    ablation = [r for r in runs if r[0].is_relative_to(folder)]
    wanted, kept = {recipe(r[1], factors) for r in ablation}, {recipe(r[1]) for r in ablation}
    references = {}
    for run in runs:
        cfg = run[1]
        if run[0].is_relative_to(folder) or (
                reference is not None and tuple(getattr(cfg, f) for f in factors) != reference):
            continue
        if recipe(cfg, factors) in wanted and recipe(cfg) not in kept:
            references.setdefault(recipe(cfg), run)
    rows = []
    for run, cfg, history, scores in ablation + list(references.values()):
        tail, refined, hw = history.tail(last_epochs), scores.get("vaem-refined") or {}, _hardware_of(run)
        settings = cfg.to_dict()
        rows.append({"epochs": float(scores["vaem"].get("epochs", cfg.epochs)),  # trained: fewer where a budget ended it
                     "seed": cfg.seed, "beta": cfg.beta, "optimizer": optimizer_label(settings),
                     "schedule": schedule_label(settings), "batch": cfg.batch_size, "lr": cfg.lr,
                     "Muon lr": cfg.lr * cfg.muon_lr_scale if cfg.optimizer == "muon" else float("nan"),
                     "Muon weight decay": cfg.muon_weight_decay if cfg.optimizer == "muon" else float("nan"),
                     "budget (min)": float(cfg.budget_minutes) if cfg.budget_minutes else float("nan"),
                     "run": str(run.relative_to(base)),
                     "training minutes": float(scores["vaem"].get("train_seconds", "nan")) / 60,
                     "threads wait": _threads_wait(hw), "machine": _machine(hw),
                     f"loss, last {last_epochs} epochs": float(tail["loss"].mean()),
                     f"reconstruction, last {last_epochs} epochs": float(tail["recon"].mean()),
                     f"KL, last {last_epochs} epochs": float(tail["kl"].mean()),
                     "VAE PSNR (dB)": float(scores["vae"]["psnr"]),
                     "VAEM PSNR (dB)": float(scores["vaem"]["psnr"]),
                     "VAEM PSNR halved (dB)": float(scores["vaem"]["psnr_halved"]),
                     "VAEM SSIM": float(scores["vaem"]["ssim"]),
                     "VAEM SSIM halved": float(scores["vaem"]["ssim_halved"]),
                     "refined VAEM PSNR (dB)": float(refined.get("psnr", "nan")),
                     "refined VAEM PSNR halved (dB)": float(refined.get("psnr_halved", "nan")),
                     "refined VAEM SSIM halved": float(refined.get("ssim_halved", "nan")),
                     "refinement (s)": _refinement_seconds(run) if refined else float("nan")})
    return (pd.DataFrame(rows).sort_values(["epochs", "seed", "beta", "optimizer"]).reset_index(drop=True) if rows
            else pd.DataFrame())


def same_seed_pairs(table: pd.DataFrame, column: str, base_value) -> dict:
    """An :func:`ablation_table`'s runs paired seed by seed with the runs it changed: for each value of ``column`` but
    ``base_value``, ``(runs, base)``, its runs and those of ``base_value`` on the seeds both have, each indexed by seed
    in the same order."""
    base = table[table[column] == base_value].set_index("seed")
    pairs = {}
    for value, runs in table[table[column] != base_value].groupby(column):
        runs = runs.set_index("seed").sort_index()
        seeds = [s for s in runs.index if s in base.index]
        pairs[value] = (runs.loc[seeds], base.loc[seeds])
    return pairs


def same_seed_words(runs: pd.DataFrame, base: pd.DataFrame,
                    against: str = "the committed run of the same seed") -> str:
    """What a pair of :func:`same_seed_pairs` scored, as the book words it: the seeds, their VAEM PSNR, each one's gain
    against the base run of its seed (as ``against`` words it), on how many seeds it was lower (where it has
    more than one), the mean gain and the gains with refined latents, up to the closing parenthesis, which the caller
    writes after what it adds."""
    gains = runs["VAEM PSNR (dB)"] - base["VAEM PSNR (dB)"]
    refined = runs["refined VAEM PSNR (dB)"] - base["refined VAEM PSNR (dB)"]
    seeds = list(runs.index)
    if len(seeds) == 1:
        return (f"seed {seeds[0]} reached {runs['VAEM PSNR (dB)'].iloc[0]:.2f} dB: {gains.iloc[0]:+.2f} dB against "
                f"{against} (refined {refined.iloc[0]:+.2f} dB")
    where = ("higher on every seed" if (gains > 0).all() else "lower on every seed" if (gains < 0).all() else
             f"lower on {(gains < 0).sum()} of {len(gains)} seeds")
    return (f"seeds {listed(seeds)} reached {listed(runs['VAEM PSNR (dB)'], '.2f')} dB: "
            + listed(gains, "+.2f") + f" dB against {against}, " + where
            + f" (mean {gains.mean():+.2f} dB; refined " + listed(refined, "+.2f") + " dB")


def terms_moved(runs: pd.DataFrame, base: pd.DataFrame, last_epochs: int = 5) -> str:
    """How the two terms of the objective at the end (the :func:`ablation_table` columns over the last ``last_epochs``
    epochs) moved from the base runs to a pair of :func:`same_seed_pairs`' runs, seed by seed, as the book words it."""
    moved = {t: listed(runs[f"{t}, last {last_epochs} epochs"] - base[f"{t}, last {last_epochs} epochs"], "+.2f")
             for t in ("reconstruction", "KL")}
    return f"its reconstruction term at the end moved by {moved['reconstruction']} and its KL term by {moved['KL']}"


def same_run(a: Path, b: Path) -> bool:
    """Whether run directories ``a`` and ``b`` hold the same run to the last bit: the loss and its two terms at every
    epoch (``history.csv``) and the four scores of every row (``metrics.json``: the same methods, refined ones too).
    False where either has no epochs or no rows."""
    losses = [[(h["loss"], h["recon"], h["kl"]) for h in read_history(run)] for run in (a, b)]
    rows = [read_run_rows(run) for run in (a, b)]
    if not losses[0] or rows[0] is None or rows[1] is None:
        return False
    scores = [{r["method"]: (r["psnr"], r["ssim"], r["psnr_halved"], r["ssim_halved"]) for r in run_rows}
              for run_rows in rows]
    return losses[0] == losses[1] and scores[0] == scores[1]


def _refinement_seconds(run: Path) -> float:
    """How long ``bssvae evaluate --refine-steps`` took to score a run (its metrics.json's evaluation record), or
    NaN where it was not recorded."""
    try:
        return float(json.loads((run / "metrics.json").read_text())["evaluation"]["eval_seconds"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return float("nan")


def _hardware_of(run: Path) -> dict:
    """The hardware a run's provenance recorded (:func:`bssvae.results.hardware`), or {} where it has none."""
    try:
        hw = json.loads((run / "provenance.json").read_text())["hardware"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return {}
    return hw if isinstance(hw, dict) else {}


def _threads_wait(hw: dict) -> str:
    """How a run's OpenMP threads waited at barriers while it trained (``spin`` or ``passive``, as bssvae.openmp
    chose and its recorded hardware ``hw`` says), or ``not recorded`` (a run from before bssvae chose it)."""
    openmp = hw.get("openmp")
    wait = openmp.get("wait") if isinstance(openmp, dict) else None
    return str(wait) if wait else "not recorded"


def _machine(hw: dict) -> str:
    """The machine a run trained on, from its recorded hardware ``hw``: a GPU's name, or a CPU's model with what it
    recorded of its vector capability and fastest bf16 instructions, and of its family and model numbers (e.g.
    ``AMD EPYC (AVX512, AVX512-BF16; family 26 model 2)``, ``Intel Xeon Processor (AVX512, AMX)``; the same model
    name covers several generations), or ``not recorded``. Unlike :func:`bench.run.cpu_key`, it assumes no capability
    where a run recorded none."""
    if str(hw.get("device", "cpu")).startswith("cuda") and hw.get("gpu"):
        return str(hw["gpu"])
    if not hw.get("cpu"):
        return "not recorded"
    capability = ", ".join(d for d in (hw.get("cpu_capability"), bf16_instructions(hw.get("cpu_flags"))) if d)
    details = "; ".join(d for d in (capability, cpu_generation(hw)) if d)
    return str(hw["cpu"]).replace("(R)", "") + (f" ({details})" if details else "")


def beta_table(name: str = "beta-bf16", root: Path | None = None, last_epochs: int = 5) -> pd.DataFrame:
    """The KL weight's ablation (:func:`ablation_table` of ``beta``): the runs under ``results/ablations/<name>/``,
    each beside the run that differs from it only in beta, with the paper's 0.5, wherever that run is kept."""
    return ablation_table(name, "beta", root, last_epochs, reference=0.5)


def epochs_table(name: str = "epochs-cpu-bf16", root: Path | None = None, last_epochs: int = 5) -> pd.DataFrame:
    """The training length's ablation (:func:`ablation_table` of ``epochs``): the runs under
    ``results/ablations/<name>/`` and every kept run that differs from one of them only in its epochs (the
    profile's run of the same recipe and seed)."""
    return ablation_table(name, "epochs", root, last_epochs)


def optimizer_table(name: str = "muon", root: Path | None = None, last_epochs: int = 5) -> pd.DataFrame:
    """The optimizer's ablation (:func:`ablation_table` of ``optimizer``): the runs under
    ``results/ablations/<name>/``, trained with Adam and with Muon (:mod:`bssvae.optim`) for the same epochs."""
    return ablation_table(name, "optimizer", root, last_epochs)


def threads_wait(settings: dict) -> str:
    """How a suite entry's OpenMP threads waited at barriers, from its settings: ``spin N`` where
    ``GOMP_SPINCOUNT`` was set (it takes precedence), else ``passive``, else OpenMP's default."""
    if settings.get("gomp_spincount"):
        return f"spin {settings['gomp_spincount']}"
    policy = (settings.get("omp_wait_policy") or "").lower()
    return policy or "OpenMP's default"


def trials_table(name: str = "short-trials-bf16", root: Path | None = None,
                 extra: dict[str, dict] | None = None) -> pd.DataFrame:
    """Kept runs of the suite's quality section with other recipes (``results/ablations/<name>/*.json``,
    one suite file each), :func:`trial_scores` rounded for display: per file, our recipe's batch, learning rate,
    optimizer (Adam where the file is from before the option; Muon's settings where not its defaults,
    :func:`optimizer_label`), the learning-rate schedule (only where the files differ in it) and seed, how its runs
    met their budget
    (``--ours-runs``: ``budgeted`` or ``fitted``), the budget, epochs done of planned, the mixtures per
    second the run sustained, VAEM PSNR at the budget (our column / halved), minutes to 18.7 dB
    (empty: not reached) and the commit. ``extra`` adds the runs of other suite
    entries under their labels (e.g. the device's entry in results/bench.json, run beside the trials).
    Empty when the folder has no trials."""
    s = trial_scores(name, root, extra)
    if s.empty or s["file"].isin(list(extra or {})).all():
        return pd.DataFrame()
    schedule = {"schedule": s["schedule"]} if s["schedule"].nunique() > 1 else {}
    return pd.DataFrame({
        "file": s["file"], "batch": s["batch"], "lr": s["lr"], "optimizer": s["optimizer label"], **schedule,
        "seed": s["seed"], "precision": s["precision"], "runs": s["runs"], "threads wait": s["threads wait"],
        "budget (min)": s["budget (min)"],
        "epochs done / planned": [f"{d:.1f} / {p}" for d, p in zip(s["epochs"], s["epochs planned"])],
        "mixtures/s": [_num(v, digits=0) for v in s["mixtures/s"]],
        "VAEM PSNR at the budget (dB)": [f"{a:.2f} / {b:.2f}" for a, b in zip(s["psnr"], s["psnr_halved"])],
        "minutes to 18.7 dB": [_num(v) for v in s["minutes to 18.7 dB"]],
        "commit": s["commit"].str[:7],
    }).sort_values(["budget (min)", "batch"]).set_index("file")


def suite_files(name: str | None, root: Path | None = None) -> list[tuple[str, dict]]:
    """``(file name, device entry)`` of each readable suite file under ``results/ablations/<name>/``, by name (what
    :func:`trial_scores` reads; the book passes one folder's to another's table as ``extra``); none for ``None``."""
    entries = []
    if name is None:
        return entries
    for path in sorted((bench_path(root).parent / "ablations" / name).glob("*.json")):
        try:
            entries.append((path.name, next(iter(json.loads(path.read_text())["devices"].values()))))
        except (OSError, json.JSONDecodeError, KeyError, StopIteration, TypeError, AttributeError):
            continue
    return entries


def trial_scores(name: str | None, root: Path | None = None, extra: dict[str, dict] | None = None) -> pd.DataFrame:
    """The suite files under ``results/ablations/<name>/`` (none for ``None``) and the suite entries of ``extra``,
    under their labels, unrounded, to compute with: per file and budget, the optimizer (Adam where the file is from
    before the option), its label in tables (:func:`optimizer_label`), Muon's layers and Newton-Schulz iterations
    (None for Adam), seed, the learning-rate schedule, batch, peak learning rate, precision, how its runs met their
    budget, how its threads waited (:func:`threads_wait`), budget, epochs done and planned, mixtures per second
    sustained, VAEM PSNR at the budget (our column and halved), minutes to 18.7 dB (None: not reached) and the commit.
    Files without a quality section are left out; empty when there are none."""
    rows = []
    for label, entry in [*suite_files(name, root), *(extra or {}).items()]:
        try:
            settings = entry.get("settings") or {}
            cfg, ours = settings["our_config"], entry["quality"]["ours"]
            muon = cfg.get("optimizer", "adam") == "muon"
            rows += [{"file": label, "optimizer": cfg.get("optimizer", "adam"), "optimizer label": optimizer_label(cfg),
                      "muon layers": cfg.get("muon_layers", TrainConfig.muon_layers) if muon else None,
                      "ns steps": cfg.get("muon_ns_steps", TrainConfig.muon_ns_steps) if muon else None,
                      "seed": cfg.get("seed", 0),
                      "schedule": schedule_label(cfg) if "lr_schedule" in cfg else "not recorded",
                      "batch": cfg["batch_size"], "lr": cfg["lr"], "precision": cfg["precision"],
                      "runs": settings.get("ours_runs", "?"), "threads wait": threads_wait(settings),
                      "budget (min)": run["budget_minutes"], "epochs": run["epochs_done"],
                      "epochs planned": run["epochs_planned"], "mixtures/s": run["mixtures"] / run["train_seconds"],
                      "psnr": ours["psnr_after_minutes"][f"{run['budget_minutes']:g}"],
                      "psnr_halved": ours["psnr_halved_after_minutes"][f"{run['budget_minutes']:g}"],
                      "minutes to 18.7 dB": ours["minutes_to_db"].get("18_7"), "commit": entry.get("commit") or ""}
                     for run in ours["runs"]]
        except (KeyError, TypeError, AttributeError):
            continue
    return pd.DataFrame(rows)


def profile_vaem_scores(profile: str = "cpu", n_sources: int = 2, root: Path | None = None,
                        folder: str | None = None) -> pd.Series:
    """VAEM PSNR (our column) of each seed of a profile's committed runs with ``n_sources`` sources, from
    ``results/<profile>/mnist.csv``, or ``results/<folder>/mnist.csv`` where ``folder`` is given (runs of a recipe
    kept elsewhere, e.g. ``ablations/cpu-adam-bf16``); empty where there is none: the spread against which a
    one-seed gain is read."""
    path = bench_path(root).parent / (folder if folder is not None else profile) / "mnist.csv"
    if not path.exists():
        return pd.Series(dtype=float, name="psnr")
    rows = pd.read_csv(path)
    return rows[(rows["method"] == "vaem") & (rows["n_sources"] == n_sources)]["psnr"].reset_index(drop=True)


def recipe_runs(folders: list[str], n_sources: int = 2, root: Path | None = None) -> pd.DataFrame:
    """The MNIST VAE runs with ``n_sources`` sources of each folder's ``mnist.csv`` (``folders`` relative to ``results/``,
    e.g. ``cpu`` for the profile's committed runs and ``ablations/cpu-adam-bf16`` for a recipe kept beside them), one row
    per run in the order given, then by seed: the folder, the run's directory (relative to ``results/``), its recipe from
    the run's config (precision, optimizer as :func:`bssvae.config.optimizer_label` names it, batch, peak learning
    rate, schedule, epochs), the seed, its training minutes,
    the machine it trained on (:func:`_machine`), VAEM in one pass (PSNR our column and halved, SSIM halved) and with
    refined latents where the run was scored with them (NaN where not). Empty when no folder has such a run."""
    from bssvae.train import read_run_config

    base = bench_path(root).parent
    rows = []
    for folder in folders:
        path = base / folder / "mnist.csv"
        if not path.exists():
            continue
        table = pd.read_csv(path)
        table = table[table["n_sources"] == n_sources]
        for seed, part in table.sort_values("seed").groupby("seed", sort=True):
            by = part.set_index("method")
            if "vaem" not in by.index:
                continue
            vaem = by.loc["vaem"]
            run = base.parent / vaem["run_dir"]
            cfg = read_run_config(run)
            refined = by.loc["vaem-refined"] if "vaem-refined" in by.index else {}
            rows.append({"folder": folder, "run": run.relative_to(base).as_posix(), "precision": cfg.precision,
                         "optimizer": optimizer_label(cfg.to_dict()), "batch": cfg.batch_size, "lr": cfg.lr,
                         "schedule": schedule_label(cfg.to_dict()), "epochs": int(vaem["epochs"]), "seed": int(seed),
                         "training minutes": float(vaem["train_seconds"]) / 60,
                         "machine": _machine(_hardware_of(run)),
                         "VAEM PSNR (dB)": float(vaem["psnr"]), "VAEM PSNR halved (dB)": float(vaem["psnr_halved"]),
                         "VAEM SSIM halved": float(vaem["ssim_halved"]),
                         "refined VAEM PSNR (dB)": float(refined.get("psnr", float("nan"))),
                         "refined VAEM PSNR halved (dB)": float(refined.get("psnr_halved", float("nan"))),
                         "refined VAEM SSIM halved": float(refined.get("ssim_halved", float("nan")))})
    return pd.DataFrame(rows)


def schedule_trials(name: str = "lr-schedule", root: Path | None = None) -> pd.DataFrame:
    """Kept runs of ``bssvae train`` that differ in their learning-rate schedule
    (``results/ablations/<name>/<run>/``, each with its config.json and metrics.json): one row per
    run with its epochs, learning rate, schedule, seed, VAEM PSNR (our column and halved), SSIM (our
    column) and training seconds. Unfinished or unreadable runs are left out; empty when there are none."""
    rows = []
    for path in sorted((bench_path(root).parent / "ablations" / name).glob("*/metrics.json")):
        try:
            cfg = json.loads((path.parent / "config.json").read_text())["config"]
            vaem = next(r for r in json.loads(path.read_text())["rows"] if r["method"] == "vaem")
            rows.append({"run": path.parent.name, "epochs": cfg["epochs"], "lr": cfg["lr"],
                         "schedule": schedule_label(cfg), "seed": cfg["seed"], "psnr": vaem["psnr"],
                         "psnr_halved": vaem["psnr_halved"], "ssim": vaem["ssim"],
                         "train_seconds": vaem["train_seconds"]})
        except (OSError, json.JSONDecodeError, KeyError, StopIteration, TypeError):
            continue
    return pd.DataFrame(rows)


def schedule_table(trials: pd.DataFrame, base: str = "cosine") -> pd.DataFrame:
    """The schedule trials side by side: per (epochs, learning rate, seed), VAEM PSNR of each schedule
    (our column / halved) and each other schedule's difference from ``base`` in our column; a last
    row per (epochs, learning rate) with the means over the seeds that ran every schedule."""
    if trials.empty:
        return pd.DataFrame()
    out = []
    for (epochs, lr), g in trials.groupby(["epochs", "lr"]):
        schedules = sorted(g["schedule"].unique(), key=lambda s: (s != base, s))
        wide = g.pivot_table(index="seed", columns="schedule", values=["psnr", "psnr_halved"])
        complete = wide.dropna()
        for seed, r in [*wide.iterrows(), *([("mean", complete.mean())] if len(complete) > 1 else [])]:
            row = {"epochs": epochs, "lr": lr, "seed": seed}
            for sch in schedules:
                row[f"{sch} (dB)"] = (f"{r[('psnr', sch)]:.2f} / {r[('psnr_halved', sch)]:.2f}"
                                      if not math.isnan(r[("psnr", sch)]) else "")
            for sch in schedules:
                if sch != base and base in schedules:
                    row[f"{sch} - {base} (dB)"] = _num(r[("psnr", sch)] - r[("psnr", base)])
            out.append(row)
    return pd.DataFrame(out).set_index(["epochs", "lr", "seed"])


def _labelled_runs(entry: dict) -> list[tuple[str, dict]]:
    q = entry.get("quality") or {}
    return [(f"{recipe}, {run['budget_minutes']:g}-min run", run)
            for recipe in ("ours", "authors") for run in (q.get(recipe) or {}).get("runs", [])]


def run_curves(entry: dict) -> dict[str, pd.DataFrame]:
    """Every time-to-quality run of an entry, ours first, labelled '<recipe>, <budget>-min run'."""
    return {label: _curve(run) for label, run in _labelled_runs(entry)}


def long_run_table(entry: dict, marks_minutes=(3, 5, 15, 30, 60)) -> pd.DataFrame:
    """Each run of an entry at the marks (VAEM PSNR, our column / halved), with the epochs it trained,
    the best score it reached and its minutes to each threshold (empty: not reached)."""
    rows = []
    for label, run in _labelled_runs(entry):
        c = _curve(run)
        row = {"run": label, **compare_curves({label: c}, marks_minutes).iloc[0].to_dict(),
               "epochs trained": f"{c['epoch'].iloc[-1]:.1f}"
               + (f" of {run['epochs_planned']}" if "epochs_planned" in run else "")}
        trained = c[c["target_s"] > 0]
        if len(trained):
            best = trained.loc[trained["psnr"].idxmax()]
            row["best (dB), at minute"] = f"{best['psnr']:.2f} / {best['psnr_halved']:.2f}, at {best['minutes']:.1f}"
        for thr in THRESHOLDS_DB.values():
            row[f"minutes to {thr} dB"] = minutes_to(run["curve"], thr)
        rows.append(row)
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def recipe_curve(entry: dict, recipe: str = "ours") -> pd.DataFrame:
    """The time-to-quality curve of a recipe's longest run: its evaluation marks (``target_s``), the
    training minutes actually reached, the epoch, and VAEM PSNR in both columns."""
    runs = ((entry.get("quality") or {}).get(recipe) or {}).get("runs", [])
    if not runs:
        return pd.DataFrame()
    return _curve(max(runs, key=lambda r: r["budget_minutes"]))


def _curve(run: dict) -> pd.DataFrame:
    return pd.DataFrame([{"target_s": row["target_s"], "minutes": row["train_seconds"] / 60, "epoch": row["epoch"],
                          "psnr": row["vaem_psnr"], "psnr_halved": row["vaem_psnr_halved"]}
                         for row in run["curve"]])


def compare_curves(curves: dict[str, pd.DataFrame], marks_minutes=(1, 5, 15)) -> pd.DataFrame:
    """VAEM PSNR (our column / halved) of each labelled curve at its evaluation mark of each budget
    (the suite's own ``psnr_after_minutes``); empty where a curve has no such mark."""
    rows = []
    for label, c in curves.items():
        row = {"run": label}
        for m in marks_minutes:
            at = c[(c["target_s"] - 60.0 * m).abs() < 1e-6]
            row[f"after {m:g} min"] = (f"{at.iloc[0]['psnr']:.2f} / {at.iloc[0]['psnr_halved']:.2f}"
                                       if len(at) else None)
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def markdown(df: pd.DataFrame, decimals: dict[str, int] | None = None) -> str:
    """A DataFrame as a Markdown pipe table (index first); empty cells for missing values.

    ``decimals`` gives columns a fixed number of decimals (SSIM to 3 places reads 0.900 beside 0.891, where a value
    rounded with :meth:`DataFrame.round` would print 0.9); other cells print as they are.
    """
    decimals = decimals or {}
    unknown = set(decimals) - {str(c) for c in df.columns}
    if unknown:
        raise KeyError(f"markdown: no column {', '.join(sorted(unknown))} to format")

    def cell(v, places=None):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if places is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
            return f"{v:.{places}f}"
        return str(v).replace("|", "\\|")

    if isinstance(df.index, pd.MultiIndex):  # one column per level, not tuples
        df = df.reset_index(level=list(range(1, df.index.nlevels)))
    header = [df.index.name or ""] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    places = [decimals.get(str(c)) for c in df.columns]
    for idx, *values in df.itertuples(name=None):  # per-column types (iterrows would make ints floats)
        lines.append("| " + " | ".join([cell(idx)] + [cell(v, p) for v, p in zip(values, places)]) + " |")
    return "\n".join(lines)


def slug(key: str) -> str:
    """A label-safe form of a device key, for unique table names per device."""
    return "".join(c if c.isalnum() else "-" for c in key.lower()).strip("-")
