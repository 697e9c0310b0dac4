"""Write book/notebooks/train.ipynb (the papermill training notebook) from the cells below.

Kept as a script so the notebook's source has one reviewable home; run it after editing
(`python scripts/make_train_notebook.py`). ``tests/test_book.py`` checks that the committed notebook is
what it writes. Cell ids are numbered, so that writing it again changes only what was edited.
"""
import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("""# Train a model on mixtures

## Overview
This notebook trains one model of the paper, evaluates it on the fixed test set and shows what it
separates. It is the notebook that the sweeps execute with [papermill](https://papermill.readthedocs.io)
for every method, number of sources $K$ and seed; the executed copies behind the book's tables are in
the *Provenance* part.

1. Choose a run: profile, method, $K$, seed (the `parameters` cell below).
2. Train it, or reload it if its run directory is already complete.
3. Look at its test scores, its training curves and separated test mixtures.

## Prerequisites
| Concepts | Importance | Notes |
| --- | --- | --- |
| [The model](../theory/model) | Necessary | What is being trained |
| [Data and protocol](../data) | Helpful | How mixtures and scores are made |

- **Time to learn**: 10 minutes.
- **Compute**: reloading a finished run takes seconds. Training takes seconds with `profile="smoke"`,
  with `profile="cpu"` 14 to 15 minutes on the 2-core Zen 5 EPYC that trained its committed runs
  (about twice as long on a 2-core Zen 4 EPYC; see *Performance*), and `profile="paper"` is meant for a GPU.

```{admonition} Run it yourself
:class: tip
`papermill book/notebooks/train.ipynb out.ipynb -p profile cpu -p n_sources 3 -p seed 1` trains
another run; `bssvae train --profile cpu -K 3 --seed 1` does the same from the command line.
```"""),
    code("""import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bssvae.train import make_run_config, train"""),
    code("""# Parameters (papermill overrides these). profile None: $BSSVAE_BOOK_PROFILE, else "paper".
profile = None
task = "mnist"
method = "vae"
n_sources = 2
n_digits = 2
seed = 0
device = "auto"
overrides = {}""", metadata={"tags": ["parameters"]}),
    md("""## Train or reload

`train` resumes an interrupted run from its checkpoint and returns at once for a finished one.
`make_run_config` builds the run's settings as `bssvae.config.make_config` does (the profile's values
plus `overrides`), except that a finished run is taken in the precision it trained in: the `cpu`
profile's recipe follows the precision the machine trains fastest in, and its committed runs trained
in bf16, which a CPU without fast bf16 would not pick for a new run."""),
    code("""profile = profile or os.environ.get("BSSVAE_BOOK_PROFILE", "paper")
config = make_run_config(profile, task=task, method=method, n_sources=n_sources, n_digits=n_digits, seed=seed,
                         device=device, **overrides)
result = train(config, progress=True)
run_dir = result["run_dir"]
print(config.to_json())"""),
    md("""## Test scores

One row per estimate kind. A VAE run gives `vae`, the decoded sources $\\hat s_k$, and `vaem`, the masked
ones $\\check s_k$ (they sum to the mixture), and `vaem-refined` once the run has been scored again with
refined latents (`bssvae evaluate --refine-steps 100 --write`; not in the paper, see *Beyond the paper:
refining the latents of each mixture*); an AE run gives `ae`, and a baseline one row named after
its method. On MNIST, `psnr`/`ssim` compare sources on the digit scale (our protocol) and the `_halved`
columns compare the halved sources (see *Data and protocol*); on the audio task the columns are
`si_sdr`, `sir`, `sar` and `si_sdri` (see *Sound as pictures*)."""),
    code("""pd.DataFrame(result["rows"]).drop(columns=["run_dir"]).round(3)"""),
    md("""## Training curves"""),
    code("""from bssvae.results import read_history

history = pd.DataFrame(read_history(run_dir))  # empty without one, or for a budget spent before the first epoch
if history.empty:
    print("no training history in this run directory: the method does not train, or its history.csv was not kept")
else:
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    for ax, col in zip(axes, ["loss", "recon", "kl"]):
        ax.plot(history["epoch"], history[col])
        ax.set_xlabel("epoch")
        ax.set_title(col)
    axes[0].set_yscale("log")
    fig.tight_layout()"""),
    md("""## Separated test mixtures

Each row is a test mixture (MNIST: images; audio: log-magnitude spectrograms): the mixture, then the $K$ estimates of each kind in the order that best
matches the true sources (surplus estimates last), then the true sources."""),
    code("""from bssvae.metrics import match_sources

ex = np.load(run_dir / "examples.npz")
kinds = [k for k in ex.files if k not in ("x", "s")]
if config.task == "audio":  # magnitude spectrograms, frequency up
    from bssvae.audio.spectrogram import SPECTROGRAMS

    spec = SPECTROGRAMS[config.model.input_dim]
    shape, cmap, origin, scale = (spec.n_bins, spec.n_frames), "magma", "lower", None
else:
    shape, cmap, origin, scale = (28, 28), "gray_r", "upper", 0.5
x, s = ex["x"].astype(np.float32), ex["s"].astype(np.float32)
n = min(6, len(x))
ordered = {}
for kind in kinds:
    est = ex[kind].astype(np.float32)
    m = match_sources(est, s)
    ordered[kind] = np.concatenate([m.matched.numpy(), m.surplus.numpy()], axis=1)
n_cols = 1 + sum(v.shape[1] for v in ordered.values()) + s.shape[1]
fig, axes = plt.subplots(n, n_cols, figsize=(1.1 * n_cols, 1.2 * n), squeeze=False)
fig.suptitle(f"{config.run_name}: the first {n} test mixtures", fontsize=9)
for i in range(n):
    panels = [("mixture", x[i])]
    for kind, est in ordered.items():
        panels += [(f"{kind} {k + 1}", est[i, k]) for k in range(est.shape[1])]
    panels += [(f"true {m + 1}", s[i, m]) for m in range(s.shape[1])]
    for j, (title, img) in enumerate(panels):
        ax = axes[i, j]
        if scale is None:
            ax.imshow(np.log1p(100 * img.reshape(shape)), cmap=cmap, origin=origin, aspect="auto")
        else:
            ax.imshow(img.reshape(shape), cmap=cmap, origin=origin, vmin=0, vmax=scale if title != "mixture" else 1)
        ax.set_xticks([]), ax.set_yticks([])
        if i == 0:
            ax.set_title(title, fontsize=8)
fig.tight_layout()"""),
    md("""## Summary
The run directory holds the configuration, the loss history, the weights, the scores and the
provenance of this run (command, commit, package versions, hardware, wall time).

### What's next?
The *Table II* and *Figure 2* pages gather every run of a sweep; `bssvae sweep sweeps/mnist.yaml`
runs them all."""),
]

def build() -> nbf.NotebookNode:
    """The notebook, its cells numbered ``cell-0``, ``cell-1``, ..."""
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    return nbf.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})


if __name__ == "__main__":
    nbf.write(build(), "book/notebooks/train.ipynb")
    print("wrote book/notebooks/train.ipynb")
