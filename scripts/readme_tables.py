"""The README's result tables, rendered from the committed results (so that no number in them is typed).

Each table sits in README.md between ``<!-- table: NAME -->`` and ``<!-- /table: NAME -->``;
``python scripts/readme_tables.py`` rewrites them from ``results/``, ``--check`` only says which are
stale (exit status 1), as ``tests/test_packaging.py`` does. ``make readme`` runs the first.

Tables: ``paper-mnist`` and ``paper-audio`` (the committed ``paper`` sweep, mean ± 95 % confidence
interval over seeds), ``cpu`` (the ``cpu`` profile's runs, K = 2, of each of its recipes) and ``speed``
(one row per device of ``results/bench.json``).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is a top-level folder beside the package, not installed
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.run import cpu_key  # noqa: E402
from bssvae import confidence, paper  # noqa: E402
from bssvae.config import optimizer_label  # noqa: E402

#: Where the rows of the cpu profile's recipes are: its committed runs (bf16, Muon held at its peak), its earlier bf16
#: recipes' (Muon held at twice that peak, and along the cosine; Adam), its fp32 recipe's (the VAE's, held at its peak)
#: and its earlier fp32 recipe's runs, kept.
CPU_RECIPES = {"bf16": "results/cpu/mnist.csv", "muon-5.6e-3": "results/ablations/cpu-muon-wsd-5.6e-3/mnist.csv",
               "muon-cosine": "results/ablations/cpu-muon-cosine/mnist.csv",
               "adam-bf16": "results/ablations/cpu-adam-bf16/mnist.csv",
               "fp32": "results/ablations/fp32-wsd-zen3/mnist.csv",
               "fp32-cosine": "results/ablations/cpu-fp32-avx2/mnist.csv"}
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table: (?P=name) -->)", re.S)


def mean_ci(values, digits: int = 2) -> str:
    """'mean ± half-width of the 95 % Student-t interval' over seeds, or the value alone for one seed."""
    values = list(values)
    return confidence.t_interval(values).text(digits) if values else "n/a"


def _pipe(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def paper_vaem_psnr(k: int) -> str:
    """The paper's VAEM PSNR (dB) on MNIST pairs at K (its Table II, bssvae.paper; not ours), or 'n/a'."""
    cell = paper.table_ii("vaem", k)
    return "n/a" if cell is None else f"{cell[0]:.{paper.DECIMALS}f}"


def paper_mnist(root: Path = ROOT) -> str:
    """MNIST pairs, PSNR (dB) on the halved scale, per method and K, with the paper's VAEM."""
    t = pd.read_csv(root / "results" / "paper" / "mnist.csv")
    t = t[t["n_digits"] == 2]
    methods = {"nmf": "NMF", "ae": "AE", "glo": "GLO", "mixit": "MixIT", "vae": "VAE", "vaem": "VAEM"}
    rows = [[f"K = {k}"] + [mean_ci(t[(t["method"] == m) & (t["n_sources"] == k)]["psnr_halved"]) for m in methods]
            + [paper_vaem_psnr(k)] for k in (2, 3, 4)]
    return _pipe(["MNIST pairs, PSNR (dB), halved scale", *methods.values(), "paper VAEM"], rows)


def paper_audio(root: Path = ROOT) -> str:
    """Instrument-note pairs (K = 2), SI-SDR (dB) per method."""
    t = pd.read_csv(root / "results" / "paper" / "audio.csv")
    t = t[t["n_sources"] == 2]
    methods = {"nmf": "NMF", "mixit": "MixIT", "vae": "VAE", "vaem": "VAEM", "irm": "IRM", "ibm": "IBM"}
    return _pipe(["Instrument notes, BSS Eval (dB)", *methods.values()],
                 [["SI-SDR"] + [mean_ci(t[t["method"] == m]["si_sdr"]) for m in methods]])


def _trained_on(root: Path, run_dirs) -> str:
    """The CPUs a set of runs trained on, as their provenance names them."""
    names = []
    for d in run_dirs:
        hw = json.loads((root / d / "provenance.json").read_text())["hardware"]
        name = cpu_key(hw).removeprefix("cpu:")  # runs from before it was recorded: the AVX2 machine
        if name not in names:
            names.append(name)
    return ", ".join(names)


def recipe_label(cfg: dict) -> str:
    """A recipe as the README's tables name it, from a config dict: precision, batch, optimizer with its peak
    learning rate, schedule (``fp32, batch 256, Adam 2e-3, wsd``)."""
    peak = f"{cfg['lr']:.1e}".replace(".0e", "e").replace("e-0", "e-")  # 2e-3, 5.6e-3
    return (f"{cfg['precision']}, batch {cfg['batch_size']:,}, {optimizer_label(cfg).capitalize()} {peak}, "
            f"{cfg['lr_schedule']}")


def cpu(root: Path = ROOT) -> str:
    """The cpu profile's MNIST VAE runs, K = 2: VAEM one pass (both columns) and refined (halved)."""
    from bssvae.train import read_run_config

    rows = []
    for path in CPU_RECIPES.values():
        t = pd.read_csv(root / path)
        t = t[t["n_sources"] == 2]
        vaem, refined = (t[t["method"] == m].sort_values("seed") for m in ("vaem", "vaem-refined"))
        # the precision each run trained in (its provenance; its config may say "auto")
        recipes = {recipe_label({**read_run_config(root / d).to_dict(),
                                 "precision": json.loads((root / d / "provenance.json").read_text())["precision"]})
                   for d in vaem["run_dir"]}
        if len(recipes) != 1:
            raise ValueError(f"{path}: its runs are not one recipe ({sorted(recipes)})")
        label = f"{recipes.pop()} (`{Path(path).parent.as_posix()}/`)"
        minutes = vaem["train_seconds"] / 60
        epochs = sorted(set(vaem["epochs"].astype(int)))
        rows.append([label, _trained_on(root, vaem["run_dir"]), ", ".join(map(str, vaem["seed"])),
                     "/".join(map(str, epochs)), f"{minutes.min():.1f}-{minutes.max():.1f}",
                     f"{mean_ci(vaem['psnr'])} / {mean_ci(vaem['ssim'], 3)}",
                     f"{mean_ci(vaem['psnr_halved'])} / {mean_ci(vaem['ssim_halved'], 3)}",
                     f"{mean_ci(refined['psnr_halved'])} / {mean_ci(refined['ssim_halved'], 3)}"])
    return _pipe(["`cpu` recipe", "trained on", "seeds", "epochs", "training (min)",
                  "VAEM, ours: PSNR / SSIM", "VAEM, halved", "VAEM refined, halved"], rows)


def _pct(v) -> str:
    return "" if v is None else f"{round(100 * v)} %"


def speed(root: Path = ROOT) -> str:
    """One row per device of results/bench.json: throughput against the authors'-style loop and FLOP rate
    (threads waiting passively, and spinning), VAEM after 3 and 15 minutes, minutes to 18.7 dB."""
    data = report.load(report.bench_path(root)) or {}
    rows = []
    for key, e in data.get("devices", {}).items():
        thr, q = e.get("throughput") or {}, e.get("quality") or {}
        sp = thr.get("spinning") or {}
        cfg = e.get("settings", {}).get("our_config", {})
        after = (q.get("ours") or {}).get("psnr_after_minutes", {})
        theirs = (q.get("authors") or {}).get("psnr_after_minutes", {})
        ratio = e.get("throughput_ratio_vs_authors")
        rows.append([
            f"`{key}`", recipe_label(cfg),
            ("" if ratio is None else f"{ratio:.2f}x")
            + (f" ({sp['ratio_of_medians']:.2f}x)" if sp else ""),
            _pct(e.get("matmul_peak_fraction")) + (f" ({_pct(sp['ours']['peak_fraction'])})" if sp else ""),
            " / ".join(f"{after[m]:.2f}" if m in after else "-" for m in ("3", "15")),
            f"{theirs['15']:.2f}" if "15" in theirs else "",
            "not reached" if e.get("minutes_to_18_7_db") is None else f"{e['minutes_to_18_7_db']:.1f}",
            f"`{(e.get('commit') or '?')[:7]}`, {round(e.get('suite_seconds', 0) / 60)} min"
            + "".join(f"; {section} from `{(origin.get('commit') or '?')[:7]}`"
                      for section, origin in report.carried_sections(e).items())])
    return _pipe(["device (`results/bench.json`)", "our recipe", "ours / authors' loop: passive (spinning)",
                  "of the matmul peak: passive (spinning)", "VAEM after 3 / 15 min (dB, ours)",
                  "authors' recipe after 15 min", "18.7 dB after (min)", "commit, suite time"], rows)


TABLES = {"paper-mnist": paper_mnist, "paper-audio": paper_audio, "cpu": cpu, "speed": speed}


def render(text: str, root: Path = ROOT) -> tuple[str, list[str]]:
    """``text`` with every table block rendered afresh, and the names of the blocks that changed."""
    changed = []

    def fill(m: re.Match) -> str:
        name = m.group("name")
        if name not in TABLES:
            raise ValueError(f"README.md: unknown table block {name!r}; known: {', '.join(TABLES)}")
        body = TABLES[name](root) + "\n"
        if body != m.group("body"):
            changed.append(name)
        return m.group(1) + body + m.group(4)

    new = BLOCK.sub(fill, text)
    missing = sorted(set(TABLES) - set(block_names(text)))
    if missing:
        raise ValueError(f"README.md: no block for table(s) {', '.join(missing)} "
                         "(<!-- table: NAME --> ... <!-- /table: NAME -->)")
    return new, changed


def block_names(text: str) -> list[str]:
    return [m.group("name") for m in BLOCK.finditer(text)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report stale tables (exit 1 if any); write nothing")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md", help="the README to render (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        new, changed = render(args.readme.read_text())
    except (OSError, ValueError, KeyError) as e:  # a malformed block, a missing or changed results file
        print(f"readme_tables: {e}", file=sys.stderr)
        return 2
    if args.check:
        if changed:
            print(f"stale README tables: {', '.join(changed)} (run `make readme`)", file=sys.stderr)
            return 1
        return 0
    if changed:
        from bssvae.results import atomic_write_text

        atomic_write_text(args.readme, new)
    print(f"README tables rewritten: {', '.join(changed)}" if changed else "README tables are current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
