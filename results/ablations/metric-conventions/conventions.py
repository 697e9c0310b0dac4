"""How much the scoring convention moves PSNR and SSIM, on the committed models whose weights we have.

Usage (from the repository root, BSSVAE_OFFLINE=1 where MNIST cannot be downloaded):
    python results/ablations/metric-conventions/conventions.py OUT.json RUN_DIR [RUN_DIR ...]

The paper gives no PSNR peak and no SSIM settings. For every run, the VAEM estimates of the 5,000
test mixtures (one pass, and with refined latents: bssvae.refine, not in the paper) are matched to
the true sources as in bssvae.metrics, then scored under each convention below. The first two
SSIM rows and the first two PSNR rows are our two columns; they must equal the committed results.
"""
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity

from bssvae.metrics import match_sources
from bssvae.refine import REFINE_STEPS
from bssvae.results import atomic_write_json, git_commit, hardware
from bssvae.train import build_task, load_model

#: name -> (scale of the images: 1 = halved sources in [0, 0.5], 2 = digit scale, data range, keyword args)
SSIM_CONVENTIONS = {
    "ours: digit scale, 7x7 uniform window, data range 1": (2.0, 1.0, {}),
    "halved: 7x7 uniform window, data range 1": (1.0, 1.0, {}),
    "halved, data range 2 (scikit-image < 0.19 default for float images)": (1.0, 2.0, {}),
    "halved, Gaussian window sigma 1.5 (Wang et al. 2004)": (
        1.0, 1.0, dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)),
    "halved, 3x3 uniform window": (1.0, 1.0, dict(win_size=3)),
    "halved, 7x7x7 window over the stacked test images (a batch passed as one volume)": (1.0, 1.0, "volume"),
    # scikit-image averages the SSIM map only where the window fits inside the image (22 x 22 of 28 x 28
    # for 7 x 7, 18 x 18 for the Gaussian). SSIMs that pad the image instead (PyTorch code of the
    # paper's time, kornia's padding="same") average the whole map, blank borders included.
    "halved, 7x7 uniform window, mean over the whole 28x28 map (borders padded by reflection)": (
        1.0, 1.0, dict(full_map=True)),
    "halved, Gaussian window sigma 1.5, mean over the whole 28x28 map (borders padded by reflection)": (
        1.0, 1.0, dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full_map=True)),
}


def ssim_mean(ref: np.ndarray, est: np.ndarray, scale: float, data_range: float, kwargs) -> float:
    ref, est = ref * scale, est * scale
    if kwargs == "volume":
        return float(structural_similarity(ref, est, data_range=data_range))
    kwargs = dict(kwargs)
    if kwargs.pop("full_map", False):  # the SSIM map (filtered with reflected borders), averaged whole
        return float(np.mean([structural_similarity(r, e, data_range=data_range, full=True, **kwargs)[1].mean()
                              for r, e in zip(ref, est)]))
    return float(np.mean([structural_similarity(r, e, data_range=data_range, **kwargs) for r, e in zip(ref, est)]))


def psnr_rows(ref: np.ndarray, est: np.ndarray) -> dict[str, float]:
    mse = ((ref - est) ** 2).mean(axis=(1, 2))  # halved scale
    per_image = -10 * np.log10(np.maximum(mse, 1e-10))
    pooled = -10 * np.log10(mse.mean())
    up = 20 * np.log10(2.0)
    return {"ours: digit scale, mean over images": float(per_image.mean() - up),
            "halved: mean over images": float(per_image.mean()),
            "halved: one PSNR of the MSE pooled over all images": float(pooled),
            "ours: one PSNR of the MSE pooled over all images": float(pooled - up)}


def main() -> None:
    out, runs = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    torch.set_num_threads(2)
    t_start = time.time()
    rows = []
    for run in runs:
        model, config = load_model(run)
        x, s = build_task(config, torch.device("cpu")).test_set()
        ref = s.double().numpy().reshape(-1, 28, 28)
        for refine in (0, REFINE_STEPS):
            t0 = time.time()
            torch.manual_seed(0)
            est = match_sources(model.separate(x, refine_steps=refine), s).matched.double().numpy().reshape(-1, 28, 28)
            row = {"run": str(run), "n_sources": config.model.n_sources, "seed": config.seed,
                   "method": "vaem-refined" if refine else "vaem", "refine_steps": refine,
                   "psnr": psnr_rows(ref, est),
                   "ssim": {name: ssim_mean(ref, est, *conv) for name, conv in SSIM_CONVENTIONS.items()},
                   "seconds": round(time.time() - t0, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    atomic_write_json(out, {"rows": rows, "n_test_images": int(ref.shape[0]), "commit": git_commit(),
                            "versions": {"torch": torch.__version__, "numpy": np.__version__,
                                         "scikit-image": __import__("skimage").__version__,
                                         "python": platform.python_version()},
                            "machine": platform.processor() or platform.machine(), "hardware": hardware("cpu"),
                            "threads": torch.get_num_threads(), "wall_seconds": round(time.time() - t_start, 1),
                            "command": " ".join(["python"] + sys.argv)})


if __name__ == "__main__":
    main()
