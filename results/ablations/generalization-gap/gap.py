"""Is the VAE's plateau over-fitting? The same models scored on mixtures of training digits and of test digits.

Usage (from the repository root, BSSVAE_OFFLINE=1 where MNIST cannot be downloaded):
    python results/ablations/generalization-gap/gap.py OUT.json RUN_DIR [RUN_DIR ...]

Every MNIST run trains on all 60,000 training digits (re-paired each epoch), so a model that had
learned its training digits by heart would separate mixtures of them better than mixtures of the
10,000 test digits it never saw. For each run this builds three sets of 5,000 mixtures of M = 2
digits, each digit used once, with the test set's construction (``bssvae.data.make_test_mixtures``,
seed 0): the committed test set, and two sets of training digits (the first and the last 10,000:
MNIST's 60,000 in order, so the second are the digits often held out as validation; here they were
trained on too). On each set it records, per mixture:

- the training objective in evaluation mode (BatchNorm's running statistics): the Laplace term
  with z the posterior mean, the same with one sample of z (seeded), the KL term, and the negative
  ELBO of one sample with the run's beta;
- PSNR and SSIM in both columns (``bssvae.metrics``) of the decoded sources (``vae``), of VAEM
  (``vaem``) and of VAEM with refined latents (``vaem-refined``, ``bssvae.refine``, not in the paper).

The test set's rows must reproduce the run's committed rows (``committed`` beside them). The
differences train minus test are the generalization gap.
"""
import json
import sys
import time
from pathlib import Path

# bssvae before torch: it sets how OpenMP's threads wait (bssvae.openmp) before torch starts them
from bssvae.data import MnistTask, load_mnist, make_test_mixtures
from bssvae.losses import gaussian_kl, laplace_nll
from bssvae.refine import REFINE_STEPS
from bssvae.results import atomic_write_json, provenance
from bssvae.train import build_task, evaluate_model, load_model

import torch  # noqa: E402

N_MIXTURES = 5000
#: name -> the digits the mixtures are made of (None: the run's own test set)
SETS = {"test digits (the committed test set)": None,
        "training digits 0-9,999": slice(0, 10_000),
        "training digits 50,000-59,999": slice(50_000, 60_000)}


@torch.no_grad()
def objective(model, x: torch.Tensor, beta: float, seed: int = 0, batch_size: int = 1000) -> dict[str, float]:
    """Means over the mixtures of the training loss's terms, in evaluation mode."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    sums = {"recon at the posterior mean": 0.0, "recon, one sample of z": 0.0, "kl": 0.0}
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        out = model(xb)  # evaluation mode: z = the posterior mean
        z = out.mu + torch.randn(out.mu.shape, generator=g) * torch.exp(0.5 * out.logvar)
        sums["recon at the posterior mean"] += float(laplace_nll(xb, out.x_hat).sum())
        sums["recon, one sample of z"] += float(laplace_nll(xb, model.decode(z).float().sum(1)).sum())
        sums["kl"] += float(gaussian_kl(out.mu, out.logvar).sum())
    out = {k: v / x.shape[0] for k, v in sums.items()}
    out["negative elbo, one sample"] = out["recon, one sample of z"] + beta * out["kl"]
    return out


def scores(model, task, config, run: Path) -> dict[str, dict[str, float]]:
    """PSNR and SSIM of VAE, VAEM and refined VAEM on the task's test set, as ``bssvae evaluate`` scores them."""
    rows, _ = evaluate_model(model, task, config, run, train_seconds=0.0, device="cpu", refine_steps=REFINE_STEPS,
                             write_audio=False)
    return {r["method"]: {k: r[k] for k in ("psnr", "ssim", "psnr_halved", "ssim_halved")} for r in rows}


def main() -> None:
    out, runs = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    if not runs:
        raise SystemExit(__doc__)
    torch.set_num_threads(2)
    t_start = time.time()
    train_images = load_mnist("train")
    rows = []
    for run in runs:
        model, config = load_model(run, device="cpu")
        trained = json.loads((run / "provenance.json").read_text())
        committed = {r["method"]: {k: r[k] for k in ("psnr", "ssim", "psnr_halved", "ssim_halved")}
                     for r in json.loads((run / "metrics.json").read_text())["rows"]}
        for name, digits in SETS.items():
            t0 = time.time()
            if digits is None:
                task = build_task(config, torch.device("cpu"))
            else:  # the same task with mixtures of training digits in place of its test set
                task = MnistTask(train_images, *make_test_mixtures(train_images[digits], config.n_digits, N_MIXTURES,
                                                                   seed=0), n_digits=config.n_digits)
            x = task.test_set()[0]
            row = {"run": str(run), "profile": config.profile, "n_sources": config.model.n_sources,
                   "seed": config.seed, "epochs": config.epochs, "set": name, "n_mixtures": int(x.shape[0]),
                   "objective": objective(model, x, config.beta), "scores": scores(model, task, config, run)}
            if digits is None:
                row["committed"] = committed
                row["trained"] = {k: trained.get(k) for k in ("command", "commit", "precision", "train_seconds")}
                row["trained"]["hardware"] = (trained.get("hardware") or {}).get("gpu") or (
                    trained.get("hardware") or {}).get("cpu")
            row["seconds"] = round(time.time() - t0, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    atomic_write_json(out, {"rows": rows, "refine_steps": REFINE_STEPS,
                            **provenance("cpu", wall_seconds=round(time.time() - t_start, 1),
                                         command=" ".join(["python"] + sys.argv))})


if __name__ == "__main__":
    main()
