"""Estimating the number of sources M from the K decoded sources of a VAE-BSS model.

The paper's claim: with K > M latent sources, VAE-BSS leaves the surplus sources (nearly) empty, so
the number of sources can be read from the decoded sources. Our rule:

    r_k = sum_i s_hat_k,i / sum_i x_i          (source k's share of the mixture's total intensity)
    M_hat = #{k : r_k > tau}

The share uses sums of intensities (L1 mass), the quantity the Laplace likelihood fits; the
sources and mixtures are non-negative (images, magnitude spectrograms). The threshold tau is fitted
on *training* mixtures only (:func:`fit_threshold`): training mixtures of M = 1, 2, 3 digits,
scaled as the training mixtures are (each digit halved, then summed; so a mixture of 3 digits
reaches 1.5), whose M is known to whoever made them; tau maximises the counting accuracy on them.
This uses the counts of training mixtures to set one scalar: a calibration, not a supervised
separation. The test mixtures (:func:`bssvae.data.make_test_mixtures` on the MNIST test images,
same scaling) are used only to evaluate.

:func:`evaluate_counting` runs the whole protocol for a trained K = 4 model and writes
``results/<profile>/counting.json``; ``python -m bssvae.counting RUN_DIR`` does it from a shell.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .errors import BssvaeError, check_int, check_real, check_tensor

#: Numbers of digits per mixture used to fit the threshold and to evaluate (the issue's protocol).
DIGIT_COUNTS = (1, 2, 3)


def source_shares(s_hat, x, eps: float = 1e-8) -> torch.Tensor:
    """Each decoded source's share of the mixture's total intensity, r_k = sum_i s_hat_k,i / sum_i x_i.

    An all-zero mixture gives shares of 0.

    Shape: s_hat (B, K, D), x (B, D) -> (B, K).
    """
    s_hat = check_tensor("s_hat", s_hat, ndim=3, min_value=0.0)
    x = check_tensor("x", x, ndim=2, min_value=0.0)
    if s_hat.shape[0] != x.shape[0] or s_hat.shape[2] != x.shape[1]:
        raise BssvaeError(f"s_hat and x: expected shapes (B, K, D) and (B, D) with the same B and D, got "
                          f"{tuple(s_hat.shape)} and {tuple(x.shape)}")
    total = x.sum(dim=1, keepdim=True)
    return s_hat.sum(dim=2) / total.clamp_min(eps) * (total > eps)


def count_sources(shares, threshold: float) -> torch.Tensor:
    """The estimated number of sources, #{k : r_k > threshold}.

    Shape: shares (B, K) -> (B,) int64.
    """
    shares = check_tensor("shares", shares, ndim=2)
    check_real("threshold", threshold)
    return (shares > threshold).sum(dim=1)


@dataclass
class ThresholdFit:
    """The fitted threshold, its accuracy on the fitting data, and the interval of equally good thresholds."""

    threshold: float
    accuracy: float
    interval: tuple[float, float]
    n: int


def fit_threshold(shares, counts) -> ThresholdFit:
    """The threshold tau that maximises the accuracy of #{k : r_k > tau} on labelled training data.

    Exact: mixture i is counted right iff tau lies in [r_i,(m_i + 1), r_i,(m_i)) (its shares sorted
    in decreasing order, r_(0) = +inf, r_(K + 1) = -inf); the best tau is found by a sweep over these
    intervals, and the midpoint of the best (widest on ties) interval is returned.

    Args:
        shares: r (N, K) of training mixtures (:func:`source_shares`).
        counts: their true numbers of sources m (N,), integers >= 0.

    Returns:
        :class:`ThresholdFit`.
    """
    shares = check_tensor("shares", shares, ndim=2).double()
    counts = torch.as_tensor(counts)
    if counts.ndim != 1 or counts.shape[0] != shares.shape[0]:
        raise BssvaeError(f"counts: expected shape ({shares.shape[0]},) to match shares, got {tuple(counts.shape)}")
    if counts.is_floating_point() or (counts < 0).any():
        raise BssvaeError("counts: expected non-negative integers")
    n, k = shares.shape
    srt = torch.sort(shares, dim=1, descending=True).values
    padded = torch.cat([torch.full((n, 1), float("inf"), dtype=srt.dtype), srt,
                        torch.full((n, 1), float("-inf"), dtype=srt.dtype)], dim=1)  # r_(0) .. r_(K+1)
    m = counts.long()
    ok = m <= k  # a mixture with more sources than K can never be counted right
    mm = m.clamp(max=k)
    lo = padded.gather(1, (mm + 1).unsqueeze(1)).squeeze(1)[ok]
    hi = padded.gather(1, mm.unsqueeze(1)).squeeze(1)[ok]
    valid = lo < hi
    lo, hi = lo[valid], hi[valid]
    if lo.numel() == 0:
        return ThresholdFit(0.0, 0.0, (float("-inf"), float("inf")), n)
    # Sweep: +1 entering [lo, hi), -1 leaving at hi; ties processed leaving-first at equal positions.
    pos = torch.cat([lo, hi])
    delta = torch.cat([torch.ones_like(lo), -torch.ones_like(hi)])
    order = np.lexsort((delta.numpy(), pos.numpy()))
    pos, delta = pos.numpy()[order], delta.numpy()[order]
    cover = np.cumsum(delta)
    best, best_seg, best_width = -1, (float("-inf"), float("inf")), -1.0
    for i in range(len(pos) - 1):
        if pos[i + 1] <= pos[i]:
            continue
        seg = (float(pos[i]), float(pos[i + 1]))
        width = seg[1] - seg[0] if np.isfinite(seg[1] - seg[0]) else np.inf
        if cover[i] > best or (cover[i] == best and width > best_width):
            best, best_seg, best_width = int(cover[i]), seg, width
    a, b = best_seg
    if np.isfinite(a) and np.isfinite(b):
        tau = 0.5 * (a + b)
    elif np.isfinite(a):
        tau = a + max(abs(a), 1e-3)
    elif np.isfinite(b):
        tau = b - max(abs(b), 1e-3)
    else:
        tau = 0.0
    return ThresholdFit(float(tau), best / n, best_seg, n)


def confusion_matrix(true_counts, predicted, max_count: int) -> np.ndarray:
    """Rows: true M (0..max_count), columns: estimated M (0..max_count); entries are mixture counts."""
    t = np.asarray(true_counts, dtype=np.int64)
    p = np.clip(np.asarray(predicted, dtype=np.int64), 0, max_count)
    mat = np.zeros((max_count + 1, max_count + 1), dtype=np.int64)
    np.add.at(mat, (t, p), 1)
    return mat


def _mixtures(images: torch.Tensor, counts: Sequence[int], n_per_count: int, seed: int):
    from .data import make_test_mixtures

    out = {}
    for m in counts:
        m = check_int("n_digits", m, minimum=1)
        n = min(n_per_count, images.shape[0] // m)
        out[m] = make_test_mixtures(images, n_digits=m, n_mixtures=n, seed=seed + m)
    return out


def decode(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The model's decoded sources s_hat (no mask), in evaluation mode. Shape: (B, D) -> (B, K, D)."""
    return model.separate(x, mask=False, batch_size=batch_size)


def fit_counter(model, train_images: torch.Tensor, counts: Sequence[int] = DIGIT_COUNTS, n_per_count: int = 2000,
                seed: int = 0) -> ThresholdFit:
    """Fit the counting threshold on training mixtures of each number of digits in ``counts``.

    Args:
        model: a trained :class:`bssvae.model.VAEBSS`.
        train_images: uint8 (N, 28, 28) *training* images (never test images).
        counts: the numbers of digits M of the fitting mixtures.
        n_per_count: mixtures per M (each image used at most once per M).
        seed: the mixtures' seed.

    Returns:
        :class:`ThresholdFit`.
    """
    shares, labels = [], []
    for m, (x, _) in _mixtures(train_images, counts, n_per_count, seed).items():
        shares.append(source_shares(decode(model, x), x))
        labels.append(torch.full((x.shape[0],), m, dtype=torch.long))
    return fit_threshold(torch.cat(shares), torch.cat(labels))


def evaluate_counting(run_dir, n_per_count: int = 2000, n_fit_per_count: int = 2000, test_seed: int = 0,
                      fit_seed: int = 0, counts: Sequence[int] = DIGIT_COUNTS, device: str = "cpu",
                      out_path: Path | None = None, write: bool = True) -> dict[str, Any]:
    """Count the sources of test mixtures of M = 1, 2, 3 digits with a trained (K = 4) model, and score it.

    The threshold is fitted on training mixtures (:func:`fit_counter`); the test mixtures come from
    the MNIST test images (:func:`bssvae.data.make_test_mixtures`, each digit halved, seed
    ``test_seed + M``). Separation quality per M is scored with :func:`bssvae.metrics.evaluate_images`
    for the decoded (``vae``) and masked (``vaem``) estimates; surplus estimates are dropped.

    Args:
        run_dir: a finished VAE (or AE) run directory (:func:`bssvae.train.load_model`).
        n_per_count, n_fit_per_count: test and fitting mixtures per M.
        out_path: where to write the JSON (default ``results/<profile>/counting.json``).
        write: write the JSON (atomically) with provenance.

    Returns:
        the JSON-ready result: threshold, confusion matrix (rows true M, columns estimated M,
        0..K), accuracy overall and per M, separation scores per M, and provenance.
    """
    from .data import load_mnist
    from .masks import vaem
    from .metrics import evaluate_images
    from .results import atomic_write_json, provenance, results_dir
    from .train import load_model

    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    model, config = load_model(run_dir, device)
    if config.task != "mnist":
        raise BssvaeError(f"run_dir: {run_dir} is a {config.task!r} run; source counting is defined on MNIST digits")
    k = config.n_sources
    fit = fit_counter(model, load_mnist("train"), counts, n_fit_per_count, fit_seed)
    test = _mixtures(load_mnist("test"), counts, n_per_count, test_seed)
    true_all, pred_all, per_m = [], [], {}
    for m, (x, s) in test.items():
        s_hat = decode(model, x)
        pred = count_sources(source_shares(s_hat, x), fit.threshold)
        true_all.append(np.full(x.shape[0], m))
        pred_all.append(pred.numpy())
        scores = {kind: evaluate_images(est, s).summary() for kind, est in
                  (("vae", s_hat), ("vaem", vaem(s_hat, x)))}
        per_m[str(m)] = {"n": int(x.shape[0]), "accuracy": float((pred.numpy() == m).mean()),
                         "mean_estimate": float(pred.float().mean()), "scores": scores}
    true_all, pred_all = np.concatenate(true_all), np.concatenate(pred_all)
    max_count = max(k, max(counts))
    result = {
        "run_dir": str(run_dir), "n_sources": k, "trained_n_digits": config.n_digits, "profile": config.profile,
        "rule": "M_hat = #{k : sum(s_hat_k) / sum(x) > threshold}",
        "scaling": "each digit halved, then summed (as in training); M = 3 mixtures reach 1.5",
        "threshold": fit.threshold, "threshold_interval": list(fit.interval), "fit_accuracy": fit.accuracy,
        "fit_mixtures_per_count": n_fit_per_count, "fit_split": "MNIST train", "test_split": "MNIST test",
        "counts": list(counts), "confusion_labels": list(range(max_count + 1)),
        "confusion": confusion_matrix(true_all, pred_all, max_count).tolist(),
        "accuracy": float((true_all == pred_all).mean()), "per_count": per_m,
        "seconds": time.perf_counter() - t0,
    }
    if write:
        result["provenance"] = provenance(device, config=config.to_dict(), seed=config.seed)
        out_path = Path(out_path) if out_path is not None else results_dir(config.profile) / "counting.json"
        atomic_write_json(out_path, result)
        result["path"] = str(out_path)
    return result


def load_counting(profile: str) -> dict | None:
    """``results/<profile>/counting.json``, or None if it has not been produced."""
    import json

    from .results import results_dir

    path = results_dir(profile) / "counting.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bssvae.counting",
                                description="Estimate the number of sources with a trained K = 4 model and "
                                            "write results/<profile>/counting.json")
    p.add_argument("run_dir", type=Path, help="a finished VAE run directory (K = 4 for the paper's protocol)")
    p.add_argument("--n", type=int, default=2000, help="test mixtures per M (default: %(default)s)")
    p.add_argument("--n-fit", type=int, default=2000, help="training mixtures per M to fit the threshold")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="output JSON (default results/<profile>/counting.json)")
    args = p.parse_args(argv)
    try:
        res = evaluate_counting(args.run_dir, args.n, args.n_fit, device=args.device, out_path=args.out)
    except BssvaeError as e:
        print(f"bssvae.counting: error: {e}", file=sys.stderr)
        return 2
    print(f"threshold {res['threshold']:.4f}, accuracy {res['accuracy']:.3f}; wrote {res['path']}")
    for m, d in res["per_count"].items():
        print(f"  M = {m}: accuracy {d['accuracy']:.3f}, vaem PSNR {d['scores']['vaem']['psnr']:.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
