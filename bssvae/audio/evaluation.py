"""BSS Eval on waveforms: permutation-matched SI-SDR, SI-SIR and SI-SAR (Table III's columns).

Our protocol (the paper does not state its own; it reports "SI-SDR, SIR, SAR"):

- Estimated magnitudes become waveforms with the mixture's phase
  (:func:`bssvae.audio.spectrogram.waveforms_from_magnitudes`); the references are the true
  source **waveforms** (each note at its mixing level), not their spectrograms.
- Matching: for each mixture, the Hungarian algorithm assigns one estimate to each true source,
  maximising the total SI-SDR (permutation-invariant evaluation). With K > M the surplus estimates
  are dropped from the scores (as in :mod:`bssvae.metrics`); with K < M a true source left
  without an estimate is scored against silence. Caveat for K > M: SI-SDR ignores scale, so a
  faint estimate that points toward a source can be kept in place of a louder, less clean one
  (MNIST matches on squared error, which does not have this). Every audio result we report has
  K = M = 2, where matching only chooses the order.
- Scores: ``fast_bss_eval.si_bss_eval_sources`` (Scheibler 2021), the scale-invariant BSS Eval
  decomposition (distortion filter of length 1; Le Roux et al. 2019, "SDR - half-baked or well
  done?"): ``si_sdr``, ``sir`` (SI-SIR), ``sar`` (SI-SAR), in dB, clamped to
  [-:data:`CLAMP_DB`, :data:`CLAMP_DB`]. A silent estimate has no defined SIR or SAR; it is
  given the floor, -:data:`CLAMP_DB`, in all three, so results stay finite.
- ``si_sdri``: SI-SDR improvement over using the mixture itself as the estimate of each source.
- Means are over every true source of every test mixture; ``per_item`` holds per-mixture means.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import BssvaeError, check_tensor

#: Metrics are clamped to [-CLAMP_DB, CLAMP_DB] dB; silent estimates score -CLAMP_DB.
CLAMP_DB = 100.0
#: An estimate whose energy is below this (relative to its reference) counts as silent.
_SILENT = 1e-20


@dataclass
class AudioScores:
    """Mean BSS Eval scores (dB) and their per-mixture and per-source values.

    Shapes (B mixtures, M true sources): ``per_item`` arrays (B,), ``per_source`` arrays (B, M),
    ``assignment`` (B, M): the index of the estimate matched to each source (-1: none).
    """

    si_sdr: float
    sir: float
    sar: float
    si_sdri: float
    per_item: dict[str, np.ndarray] = field(default_factory=dict)
    per_source: dict[str, np.ndarray] = field(default_factory=dict)
    assignment: np.ndarray | None = None

    def summary(self) -> dict[str, float]:
        return {"si_sdr": self.si_sdr, "sir": self.sir, "sar": self.sar, "si_sdri": self.si_sdri}


def _pairwise_si_sdr(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """SI-SDR of every (reference, estimate) pair. Shape: est (B, K, L), ref (B, M, L) -> (B, M, K)."""
    import fast_bss_eval

    return -fast_bss_eval.si_sdr_loss(est, ref, clamp_db=CLAMP_DB, pairwise=True)


def match_waveforms(estimates: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Assign one estimate to each reference, maximising the total SI-SDR (Hungarian algorithm).

    Shape: estimates (B, K, L), references (B, M, L) -> matched (B, M, L) (silence where K < M
    leaves a reference unmatched) and assignment (B, M) (-1 there).
    """
    b, k, n = estimates.shape
    m = references.shape[1]
    score = _pairwise_si_sdr(estimates, references)  # (B, M, K)
    assignment = np.full((b, m), -1, dtype=np.int64)
    for i in range(b):
        rows, cols = linear_sum_assignment(-score[i])
        assignment[i, rows] = cols
    matched = np.zeros((b, m, n), dtype=estimates.dtype)
    for j in range(m):
        ok = assignment[:, j] >= 0
        matched[ok, j] = estimates[ok, assignment[ok, j]]
    return matched, assignment


def bss_eval(estimates, references, mixture=None, chunk: int = 64) -> AudioScores:
    """Permutation-matched SI-SDR, SI-SIR and SI-SAR of estimated source waveforms.

    Args:
        estimates: (B, K, L) estimated source waveforms.
        references: (B, M, L) true source waveforms (none may be silent).
        mixture: (B, L) mixtures, for ``si_sdri``; if None, ``si_sdri`` is NaN.
        chunk: mixtures scored at a time (memory).

    Returns:
        :class:`AudioScores` (see the module docstring for the protocol).

    Raises:
        BssvaeError: for mismatched shapes, non-finite values, a silent reference, or references
            that are linearly dependent (SI-SIR and SI-SAR project onto their span).
    """
    import fast_bss_eval

    est = check_tensor("estimates", estimates, ndim=3).detach().cpu().double().numpy()
    ref = check_tensor("references", references, ndim=3).detach().cpu().double().numpy()
    if est.shape[0] != ref.shape[0] or est.shape[2] != ref.shape[2]:
        raise BssvaeError(f"estimates and references: expected shapes (B, K, L) and (B, M, L) with the same B "
                          f"and L, got {est.shape} and {ref.shape}")
    ref_energy = (ref ** 2).sum(-1)
    if (ref_energy <= 0).any():
        raise BssvaeError("references: a true source is silent; its SI-SDR is undefined")
    mix = None
    if mixture is not None:
        mix = check_tensor("mixture", mixture, ndim=2).detach().cpu().double().numpy()
        if mix.shape != (ref.shape[0], ref.shape[2]):
            raise BssvaeError(f"mixture: expected shape {(ref.shape[0], ref.shape[2])}, got {mix.shape}")
    b, m = ref.shape[:2]
    out = {k: np.empty((b, m)) for k in ("si_sdr", "sir", "sar", "si_sdri")}
    assignment = np.empty((b, m), dtype=np.int64)
    for s in range(0, b, chunk):
        sl = slice(s, min(b, s + chunk))
        matched, assign = match_waveforms(est[sl], ref[sl])
        assignment[sl] = assign
        try:
            with np.errstate(divide="ignore", invalid="ignore"):
                sdr, sir, sar = fast_bss_eval.si_bss_eval_sources(ref[sl], matched, clamp_db=CLAMP_DB,
                                                                  compute_permutation=False)
        except np.linalg.LinAlgError as e:  # SIR/SAR project onto the span of the references
            dependent = [sl.start + i for i, r in enumerate(ref[sl]) if np.linalg.matrix_rank(r) < m]
            raise BssvaeError("references: the true sources of mixture(s) "
                              f"{dependent[:10] if dependent else 'in ' + str(sl)} are linearly dependent "
                              "(a source repeated or scaled), so SI-SIR and SI-SAR are undefined") from e
        silent = (matched ** 2).sum(-1) <= _SILENT * ref_energy[sl]
        for key, v in (("si_sdr", sdr), ("sir", sir), ("sar", sar)):
            v = np.nan_to_num(np.asarray(v, dtype=np.float64), nan=-CLAMP_DB, posinf=CLAMP_DB, neginf=-CLAMP_DB)
            v[silent] = -CLAMP_DB
            out[key][sl] = v
        if mix is not None:
            mixture_as_estimate = np.repeat(mix[sl, None, :], m, axis=1)
            base = -fast_bss_eval.si_sdr_loss(mixture_as_estimate, ref[sl], clamp_db=CLAMP_DB)
            out["si_sdri"][sl] = out["si_sdr"][sl] - base
        else:
            out["si_sdri"][sl] = np.nan
    return AudioScores(**{k: float(v.mean()) for k, v in out.items()},
                       per_item={k: v.mean(axis=1) for k, v in out.items()}, per_source=out, assignment=assignment)
