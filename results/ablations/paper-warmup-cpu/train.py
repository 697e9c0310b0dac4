"""The `paper` profile's MNIST VAE (K = 2) retrained on this CPU with and without its beta warm-up.

    BSSVAE_THREADS=1 python results/ablations/paper-warmup-cpu/train.py SEED WARMUP_EPOCHS

Everything else is the `paper` profile (250 epochs, batch 512, Adam 1e-3, cosine), except the
precision: float32, because this CPU has no native bf16 (the committed `paper` runs trained on an
H100 in bf16). The run directory goes beside this script; nothing is written to results/paper.
"""
import sys
from pathlib import Path

from bssvae.config import make_config
from bssvae.train import train

seed, warmup = int(sys.argv[1]), int(sys.argv[2])
config = make_config("paper", method="vae", n_sources=2, seed=seed, beta_warmup_epochs=warmup,
                     precision="fp32", device="cpu")
run_dir = Path(__file__).parent / f"mnist-vae-K2-M2-seed{seed}-warmup{warmup}"
result = train(config, run_dir=run_dir, progress=False, write_results=False)
print(result["run_dir"], [(r["method"], round(r["psnr"], 2), round(r["psnr_halved"], 2)) for r in result["rows"]])
