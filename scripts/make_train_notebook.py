"""Write book/notebooks/train.ipynb (the papermill training notebook) from the cells below.

Kept as a script so the notebook's source has one reviewable home; run it after editing.
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
  about 15 minutes on a 2-core CPU with `profile="cpu"`, and is meant for a GPU with `profile="paper"`.

```{admonition} Run it yourself
:class: tip
`papermill book/notebooks/train.ipynb out.ipynb -p profile cpu -p n_sources 3 -p seed 1` trains
another run; `bssvae train --profile cpu -K 3 --seed 1` does the same from the command line.
```"""),
    code("""import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bssvae.config import make_config
from bssvae.train import train"""),
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

`train` resumes an interrupted run from its checkpoint and returns at once for a finished one."""),
    code("""profile = profile or os.environ.get("BSSVAE_BOOK_PROFILE", "paper")
config = make_config(profile, task=task, method=method, n_sources=n_sources, n_digits=n_digits, seed=seed,
                     device=device, **overrides)
result = train(config, progress=True)
run_dir = result["run_dir"]
print(config.to_json())"""),
    md("""## Test scores

One row per estimate kind: `vae` are the decoded sources $\\hat s_k$, `vaem` the masked ones
$\\check s_k$ (they sum to the mixture). `psnr`/`ssim` compare sources on the digit scale (our
protocol); the `_halved` columns compare the halved sources (see *Data and protocol*)."""),
    code("""pd.DataFrame(result["rows"]).drop(columns=["run_dir"]).round(3)"""),
    md("""## Training curves"""),
    code("""history = pd.read_csv(run_dir / "history.csv") if (run_dir / "history.csv").exists() else None
if history is None or history.empty:
    print("this method has no training curve")
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
nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"}})
nbf.write(nb, "book/notebooks/train.ipynb")
print("wrote book/notebooks/train.ipynb")
