"""bssvae: unsupervised blind source separation with variational auto-encoders.

Companion library to J. Neri, R. Badeau, P. Depalle, "Unsupervised Blind Source Separation with
Variational Auto-Encoders", EUSIPCO 2021. One module per concept:

- :mod:`bssvae.config`  - model and training configuration, named profiles (paper values are defaults)
- :mod:`bssvae.data`    - MNIST loading (cache, download, offline) and mixtures
- :mod:`bssvae.model`   - the VAE-BSS network of Table I (and its AE variant)
- :mod:`bssvae.losses`  - Laplace likelihood, Gaussian KL, negative ELBO, beta warm-up
- :mod:`bssvae.masks`   - VAEM masking
- :mod:`bssvae.metrics` - source matching, PSNR, SSIM
- :mod:`bssvae.confidence` - intervals over seeds, paired comparisons of recipes
- :mod:`bssvae.paper`   - the paper's published numbers (Tables II and III), transcribed once
- :mod:`bssvae.train`   - training, checkpoints, evaluation, run directories
- :mod:`bssvae.cli`     - the ``bssvae`` command line
- :mod:`bssvae.openmp`  - how PyTorch's threads wait between operators, chosen at import
"""

# How OpenMP's threads wait between operators: spinning when the cores are idle, passive waiting
# when other work shares them (BSSVAE_OMP_WAIT=auto|passive|spin; see bssvae.openmp). Effective only
# when bssvae is imported before torch, as the command line, the sweeps and the training notebook do.
from . import openmp as _openmp

_openmp.DECISION.update(_openmp.decide())

__version__ = "0.1.0"

#: Version of the run-directory layout; a run directory written by an incompatible layout is refused.
RUN_FORMAT_VERSION = 1
