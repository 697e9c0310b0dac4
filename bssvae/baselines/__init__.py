"""Baselines compared with VAE-BSS in Tables II and III.

The VAE and the AE are trained by :mod:`bssvae.train`; the other methods register here.
"""
from __future__ import annotations

#: Every method name a run may have. ``vae`` yields the ``vae`` and ``vaem`` rows; ``ae`` the ``ae`` row.
ALL_METHODS = ("vae", "ae")


def run_baseline(config, run_dir=None, task=None, write_results=True):
    from ..errors import BssvaeError

    raise BssvaeError(f"method: {config.method!r} is not implemented; available: {list(ALL_METHODS)}")
