"""bssvae: unsupervised blind source separation with variational auto-encoders.

Companion library to J. Neri, R. Badeau, P. Depalle, "Unsupervised Blind Source Separation with
Variational Auto-Encoders", EUSIPCO 2021. One module per concept:

- :mod:`bssvae.config`  - model and training configuration, named profiles (paper values are defaults)
- :mod:`bssvae.data`    - MNIST loading (cache, download, offline) and mixtures
- :mod:`bssvae.model`   - the VAE-BSS network of Table I (and its AE variant)
- :mod:`bssvae.losses`  - Laplace likelihood, Gaussian KL, negative ELBO, beta warm-up
- :mod:`bssvae.masks`   - VAEM masking
- :mod:`bssvae.metrics` - source matching, PSNR, SSIM
- :mod:`bssvae.train`   - training, checkpoints, evaluation, run directories
- :mod:`bssvae.cli`     - the ``bssvae`` command line
"""

import os as _os

# OpenMP threads that busy-wait between ops steal the cores a loaded machine needs: measured on
# 2 cores, passive waiting kept training 2-20x faster under load (python -m bench). Only effective
# when bssvae is imported before torch, as the command line and the sweeps do. On a machine of your
# own, GOMP_SPINCOUNT=10000 (it takes precedence) lets threads spin briefly: faster when idle, much
# slower beside another busy process (book, performance page, "Threads").
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

#: Version of the run-directory layout; a run directory written by an incompatible layout is refused.
RUN_FORMAT_VERSION = 1
