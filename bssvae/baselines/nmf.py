"""NMF baseline: a dictionary learned on training mixtures, atoms grouped into K sources, Wiener-like masks.

Non-negative matrix factorisation (Lee & Seung, Nature 1999; for separation, Smaragdis et al.,
"Static and dynamic source separation using nonnegative factorizations", IEEE SPM 2014) models
each mixture as a non-negative combination of r non-negative atoms, x ~= w H. Used blindly, as here,
it knows nothing of sources: it must be told which atoms make up which source. The paper does not
say how its NMF baseline did this; our choices, all unsupervised and made on training data only:

1. **Dictionary**: scikit-learn's :class:`sklearn.decomposition.NMF` (coordinate descent,
   NNDSVDa initialisation) fitted to ``n_fit`` *training mixtures* drawn exactly as the VAE's
   training batches are (``task.epoch_batches``), with r = ``components_per_source`` x K atoms
   (20 per source: the MNIST VAE's latent size per source; the audio task keeps 20, where its VAE
   has 64). Loss: Frobenius for images; the Kullback-Leibler divergence (multiplicative updates)
   for magnitude spectrograms.

   **What an atom is.** The data matrix has one row per mixture, the whole flattened input
   (N x D), so each atom is a whole input: a 28 x 28 image for MNIST, a whole F x T spectrogram
   (512 x 64 at the paper's size) for audio, a non-negative blend of training mixtures. This is
   not the classic spectrogram NMF of audio separation, which factorises one F x T spectrogram
   into F-bin spectral templates and their activations over time. For the audio task it matters:
   a whole-spectrogram atom holds the notes of the training pitches, and the test pitches are
   held out (:mod:`bssvae.audio.notes`), so the dictionary cannot rebuild a test mixture. With the
   ``paper`` profile's settings the relative L1 reconstruction error sum|x - wH| / sum|x| is
   about 0.5 on training mixtures and about 1 on test mixtures, no better than reconstructing
   zeros (``results/ablations/audio-test-intervals``). The audio NMF column is this
   baseline's, not spectrogram NMF's.
2. **Assignment of atoms to sources** (the open choice): k-means (scikit-learn, k-means++,
   ``kmeans_n_init`` restarts, seeded by the run's seed) on the unit-norm atoms, into K groups. Atoms
   that look alike (same strokes / same spectral shape) are grouped into one source. The rule is
   fixed once per model, so it is deterministic given the seed; its weakness is that it cannot
   follow which digit an atom belongs to in a given mixture (MNIST sources are all digits and share
   the same atoms), which is what a per-mixture rule would need labels or a source model to do.
3. **Separation** of a test mixture: its activations w are found with the dictionary fixed
   (``NMF.transform``); source k's model is y_k = w_Ck H_Ck (the atoms of group k), and the estimate
   is the Wiener-like mask s_check_k = x * y_k / sum_j y_j (:func:`bssvae.masks.vaem`), so the
   estimates add up to the mixture as VAEM's do.

Everything runs on the CPU (scikit-learn).
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from ..errors import BssvaeError, check_int, check_tensor
from ..masks import vaem
from .common import MethodOutput, RunContext, training_mixtures


def fit_dictionary(mixtures, n_components: int, beta_loss: str = "frobenius", max_iter: int = 400,
                   tol: float = 1e-4, seed: int = 0):
    """Fit scikit-learn's NMF to training mixtures.

    Args:
        mixtures: (N, D) non-negative training mixtures.
        n_components: r, the number of atoms.
        beta_loss: ``"frobenius"`` (coordinate descent) or ``"kullback-leibler"`` (multiplicative updates).

    Returns:
        the fitted :class:`sklearn.decomposition.NMF`; ``components_`` is the dictionary H (r, D).
    """
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    x = check_tensor("mixtures", mixtures, ndim=2, min_value=0.0).numpy().astype(np.float32)
    n_components = check_int("n_components", n_components, minimum=1)
    solver = "cd" if beta_loss == "frobenius" else "mu"
    nmf = NMF(n_components=n_components, init="nndsvda", solver=solver, beta_loss=beta_loss, max_iter=max_iter,
              tol=tol, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is a budget; n_iter_ is recorded
        nmf.fit(x)
    return nmf


def assign_atoms(dictionary, n_sources: int, seed: int = 0, n_init: int = 10) -> np.ndarray:
    """Group the dictionary's atoms into K sources by k-means on the unit-norm atoms.

    Args:
        dictionary: H (r, D), r >= K non-negative atoms.
        n_sources: K.
        seed: k-means' random state: the same seed gives the same groups.

    Returns:
        labels (r,) in 0..K-1; every group is non-empty.
    """
    from sklearn.cluster import KMeans

    h = check_tensor("dictionary", dictionary, ndim=2, min_value=0.0).double().numpy()
    n_sources = check_int("n_sources", n_sources, minimum=1)
    if h.shape[0] < n_sources:
        raise BssvaeError(f"dictionary: expected at least n_sources = {n_sources} atoms, got {h.shape[0]}")
    unit = h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)
    labels = KMeans(n_clusters=n_sources, n_init=n_init, random_state=seed).fit_predict(unit)
    # KMeans never leaves a cluster empty when r >= K, but a degenerate dictionary (identical atoms)
    # could; give such a group the atom farthest from its centre so every source exists.
    for k in range(n_sources):
        if not np.any(labels == k):
            counts = np.bincount(labels, minlength=n_sources)
            donor = int(np.argmax(counts))
            labels[np.flatnonzero(labels == donor)[-1]] = k
    return labels.astype(np.int64)


def separate(nmf, labels: np.ndarray, x, n_sources: int, eps: float = 1e-8) -> torch.Tensor:
    """Separate mixtures with a fixed dictionary and atom groups, by Wiener-like masking.

    Shape: x (B, D) -> estimates (B, K, D), adding up to x.
    """
    from sklearn.exceptions import ConvergenceWarning

    x = check_tensor("x", x, ndim=2, min_value=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the KL solver iterates in transform too
        w = nmf.transform(x.numpy().astype(np.float32))  # (B, r), the dictionary stays fixed
    h = nmf.components_
    models = np.stack([w[:, labels == k] @ h[labels == k] for k in range(n_sources)], axis=1)
    return vaem(torch.from_numpy(models).float(), x.float(), eps)


def fit_and_separate(ctx: RunContext) -> MethodOutput:
    """Fit the NMF baseline on training mixtures and separate the test mixtures (see the module docstring)."""
    cfg, st = ctx.config, ctx.settings
    k = cfg.n_sources
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    mixtures = training_mixtures(ctx.task, gen, int(st["n_fit"]))
    nmf = fit_dictionary(mixtures, st["components_per_source"] * k, st["beta_loss"], st["max_iter"], st["tol"],
                         cfg.seed)
    labels = assign_atoms(nmf.components_, k, cfg.seed, st["kmeans_n_init"])
    train_seconds = time.perf_counter() - t0
    x, _ = ctx.task.test_set()
    est = separate(nmf, labels, x.detach().float().cpu(), k)
    info = {"nmf": {"n_fit": int(mixtures.shape[0]), "n_components": int(nmf.n_components_),
                    "n_iter": int(nmf.n_iter_), "reconstruction_err": float(nmf.reconstruction_err_),
                    "atoms_per_source": np.bincount(labels, minlength=k).tolist()}}
    return MethodOutput(estimates=est, train_seconds=train_seconds, epochs=int(nmf.n_iter_), device="cpu",
                        info=info)
