"""Baselines compared with VAE-BSS in Tables II and III, and the dispatch that runs them.

The VAE and the AE are trained by :mod:`bssvae.train`; every other method registers here and runs
through :func:`run_baseline`, which keeps :func:`bssvae.train.train`'s contract: the same task (so
the same fixed test mixtures and the same ``task.evaluate``), the same run directory layout, the
same results rows, and skip-if-done / resume-if-interrupted behaviour.

=========  ===================================================================  ===================
method     what it is                                                           supervision
=========  ===================================================================  ===================
``nmf``    scikit-learn NMF dictionary learned on training mixtures (each atom  unsupervised
           a whole input: a 28 x 28 image, a whole F x T spectrogram), atoms
           clustered into K groups, Wiener-like masking (:mod:`.nmf`)
``glo``    GLO masking of Halperin, Ephrat & Hoshen, ICML 2019 (:mod:`.glo`)    semi-supervised
``mixit``  mixture invariant training, Wisdom et al., NeurIPS 2020 (:mod:`.mixit`)  unsupervised
``ibm``    ideal binary mask from the true sources (:mod:`.oracle`)             oracle (upper bound)
``irm``    ideal ratio mask from the true sources (:mod:`.oracle`)              oracle (upper bound)
=========  ===================================================================  ===================

Settings that :class:`bssvae.config.TrainConfig` has no field for (NMF's rank, GLO's test-time
optimisation steps, ...) live in :data:`METHOD_SETTINGS`, per method and profile; they are recorded
in each run's ``metrics.json``. :data:`CONFIG_OVERRIDES` holds per-(profile, method) values of
TrainConfig fields; :func:`bssvae.config.make_config` applies them.
"""
from __future__ import annotations

import copy
from typing import Any

#: Every method name a run may have. ``vae`` yields the ``vae`` and ``vaem`` rows; ``ae`` the ``ae`` row.
ALL_METHODS = ("vae", "ae", "nmf", "glo", "mixit", "ibm", "irm")
#: The methods run by :func:`run_baseline`.
BASELINE_METHODS = ("nmf", "glo", "mixit", "ibm", "irm")
#: Oracles use the M true test sources: their rows have ``n_sources = n_digits`` (K does not apply).
ORACLE_METHODS = ("ibm", "irm")

#: Method settings beyond TrainConfig: ``{method: {profile or "default": {...}}}``; a profile's
#: entry overrides the method's defaults key by key, and ``"<profile>/<task>"`` overrides both.
METHOD_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "nmf": {
        # components_per_source x K atoms (20 per source = the MNIST VAE's latent size per source;
        # the audio runs keep 20, where the audio VAE has 64 per source); fit on n_fit training
        # mixtures (drawn like the VAE's training mixtures).
        "default": dict(components_per_source=20, n_fit=20000, max_iter=400, tol=1e-4,
                        beta_loss="frobenius", kmeans_n_init=10),
        "smoke": dict(n_fit=1000, max_iter=200),
        "cpu": dict(n_fit=10000),
        "paper": dict(n_fit=20000),
        # Magnitude spectrograms: the KL divergence (beta = 1) is NMF's usual audio loss; a
        # 32768-bin input needs far fewer fitting mixtures to stay within memory.
        "default/audio": dict(beta_loss="kullback-leibler", n_fit=2000, max_iter=200),
        "smoke/audio": dict(n_fit=64, max_iter=50),
    },
    "glo": {
        # latent_dim: the VAE's D_z; code_lr: SparseAdam on the per-sample codes; test_steps and
        # test_lr: Adam on the test mixtures' codes, generators frozen.
        "default": dict(latent_dim=20, code_lr=5e-2, test_steps=500, test_lr=5e-2, test_chunk=2500),
        "smoke": dict(test_steps=100),
        "cpu": dict(test_steps=200),
        "paper": dict(test_steps=1000),
    },
    "mixit": {
        # input_norm: the network sees x / mean(x) (see bssvae.baselines.mixit).
        "default": dict(input_norm=True),
    },
    "ibm": {"default": dict()},
    "irm": {"default": dict()},
}

#: Proposed TrainConfig overrides per (profile, method), on top of ``PROFILES[profile][task]``.
#: GLO trains two stages of ``epochs`` each (generator of the observed digits, then the unobserved
#: generator on mixtures) and then optimises the test codes: on the ``cpu`` profile 60 epochs per
#: stage is our estimate of ~15 minutes on 2 cores (extrapolated from small runs, not measured in
#: full). MixIT uses the profile's VAE epochs: the same network and the same passes over the data.
CONFIG_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("cpu", "glo"): dict(epochs=60),
    # 120 epochs per stage: with MixIT and NMF beside it, GLO's two stages then fit the 10-minute
    # runs of the lent H100 (the VAE's 250 epochs would not).
    ("paper", "glo"): dict(epochs=120),
}


def method_settings(method: str, profile: str = "default", task: str = "mnist") -> dict[str, Any]:
    """The settings of ``method`` for a profile and task (see :data:`METHOD_SETTINGS`)."""
    from ..errors import check_choice

    check_choice("method", method, BASELINE_METHODS)
    table = METHOD_SETTINGS[method]
    out: dict[str, Any] = {}
    for key in ("default", profile, f"default/{task}", f"{profile}/{task}"):
        out.update(copy.deepcopy(table.get(key, {})))
    return out


def baseline_config(profile: str = "cpu", task: str = "mnist", method: str = "nmf", n_sources: int = 2,
                    **overrides: Any):
    """:func:`bssvae.config.make_config` for a baseline (which takes the method's :data:`CONFIG_OVERRIDES`).

    Oracles get ``n_sources = n_digits`` when ``n_sources`` is None.
    """
    from ..config import make_config

    values = {k: v for k, v in overrides.items() if v is not None}
    if method in ORACLE_METHODS and n_sources is None:
        n_sources = values.get("n_digits", 2)
    return make_config(profile, task=task, method=method, n_sources=n_sources, **values)


def run_baseline(config, run_dir=None, task=None, write_results: bool = True, *, resume: bool = True,
                 progress: bool = False, stop_after_epochs: int | None = None,
                 settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one baseline: fit it (on training data only), separate the test mixtures, score, record.

    The contract of :func:`bssvae.train.train`: the run directory
    ``results/<profile>/runs/<task>-<method>-K<K>-M<M>-seed<seed>/`` receives ``config.json``,
    ``settings.json`` (the method's settings, written when the run starts), ``metrics.json`` (written
    last: the run is finished), ``provenance.json``, ``examples.npz`` (``x``, ``s`` and ``<method>``:
    the first 12 test mixtures, float16) and, for trained methods, ``history.csv`` and checkpoints;
    the rows are appended to ``results/<profile>/<task>.csv``. A finished run returns at once, and
    neither a finished run nor a checkpoint is taken up under other settings (a ``RunDirError``
    names them; ``resume=False`` starts the run over).

    Args:
        config: a :class:`bssvae.config.TrainConfig` whose ``method`` is one of :data:`BASELINE_METHODS`.
        run_dir: where the run lives (default :func:`bssvae.train.default_run_dir`).
        task: a prepared data task (default: :func:`bssvae.train.build_task`).
        write_results: append the rows to the results CSV.
        resume: continue an interrupted trained baseline from its checkpoint; False deletes the
            directory's previous result and checkpoints first (a restart).
        progress: show progress bars.
        stop_after_epochs: stop a trained baseline after this many epochs in total (as if interrupted).
        settings: overrides of the method's settings (:func:`method_settings`); recorded in metrics.json.

    Returns:
        ``{"run_dir", "rows", "history", "completed"}``.

    Raises:
        BssvaeError: for an unknown method or a setting the method cannot run with.
    """
    from ..config import TrainConfig
    from ..errors import BssvaeError

    if not isinstance(config, TrainConfig):
        raise BssvaeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    if config.method not in BASELINE_METHODS:
        raise BssvaeError(f"method: {config.method!r} is not a baseline; baselines are {list(BASELINE_METHODS)} "
                          "(vae and ae are trained by bssvae.train.train)")
    from .common import run_method

    if config.method == "nmf":
        from .nmf import fit_and_separate
    elif config.method == "glo":
        from .glo import check_config, fit_and_separate

        check_config(config)
    elif config.method == "mixit":
        from .mixit import fit_and_separate
    else:
        from .oracle import fit_and_separate
    return run_method(config, fit_and_separate, run_dir=run_dir, task=task, write_results=write_results,
                      resume=resume, progress=progress, stop_after_epochs=stop_after_epochs,
                      settings=settings)
