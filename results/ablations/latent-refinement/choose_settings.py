"""Choose latent refinement's settings on validation mixtures from the MNIST *training* images.

Usage (from the repository root): python results/ablations/latent-refinement/choose_settings.py RUN_DIR OUT.json
Validation set: 2,000 mixtures of 2 digits drawn (seed 1, each image once) from the last 10,000
training images (MNIST's usual validation split). The test set is not read.
"""
import json
import platform
import sys
import time
from pathlib import Path

import torch

from bssvae.data import load_mnist, make_test_mixtures
from bssvae.masks import vaem
from bssvae.metrics import evaluate_images
from bssvae.refine import refine_latents
from bssvae.results import git_commit
from bssvae.train import load_model

run, out = Path(sys.argv[1]), Path(sys.argv[2])
torch.set_num_threads(2)
torch.manual_seed(0)
model, config = load_model(run)
x, s = make_test_mixtures(load_mnist("train")[50000:], n_digits=2, n_mixtures=2000, seed=1)
GRID = [(lr, prior) for lr in (0.02, 0.05, 0.1) for prior in (0.0, 0.5)]
STEPS = (0, 10, 30, 100, 200)
rows = []
t_start = time.time()
for lr, prior in GRID:
    for steps in STEPS:  # each from the encoder's means (continuing would carry Adam's state over)
        t0 = time.time()
        z = refine_latents(model, x, steps=steps, lr=lr, prior_weight=prior)
        with torch.no_grad():
            s_hat = model.decode(z)
        scores = evaluate_images(vaem(s_hat, x), s).summary()
        rows.append({"lr": lr, "prior_weight": prior, "steps": steps, **scores,
                     "seconds": round(time.time() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
commit = git_commit()  # "-dirty" if the working tree had changes
out.write_text(json.dumps({"run": str(run), "validation": "2000 mixtures, seed 1, training images 50000-59999",
                           "rows": rows, "commit": commit, "torch": torch.__version__,
                           "python": platform.python_version(), "machine": platform.processor() or platform.machine(),
                           "threads": torch.get_num_threads(), "wall_seconds": round(time.time() - t_start, 1),
                           "command": " ".join(["python"] + sys.argv)}, indent=1))
