"""Oracle masks, the upper bounds of masking separation: ideal binary mask (IBM) and ideal ratio mask (IRM).

Both are computed from the *true* test sources (they are not methods: no model could know them):

- IBM: each input entry (pixel, time-frequency bin) goes wholly to the source that dominates it
  (Wang, "On ideal binary mask as the computational goal of auditory scene analysis", 2005);
- IRM: each entry is shared in proportion to the sources' magnitudes, s_m / sum_j s_j, which with
  non-negative sources summing to the mixture returns them exactly (VAEM's rule with the true
  sources). This is one of several ratio masks: Narayanan & Wang (ICASSP 2013) and much of speech
  enhancement use energies, (s_m^2 / sum_j s_j^2)^beta with beta = 0.5; the paper does not say which
  it used.

They are the paper's Table III oracle columns; we add them to Table II too. On MNIST, sources are
non-negative and add up exactly to the mixture, so the IRM is perfect (PSNR capped at
:data:`bssvae.metrics.PSNR_CAP`) and only the IBM is informative; on spectrogram magnitudes the
mixture is not the sum of the source magnitudes and neither is perfect.

Because the oracles use the M true sources, the number of assumed sources K does not apply: a run
must have ``n_sources == n_digits`` and its single row has ``n_sources = M``. Oracles are
deterministic: the seed changes nothing.
"""
from __future__ import annotations

from ..masks import ideal_binary_mask, ideal_ratio_mask
from .common import MethodOutput, RunContext


def fit_and_separate(ctx: RunContext) -> MethodOutput:
    """Apply the IBM or the IRM of the true test sources to the test mixtures.

    Shape: returns estimates (B, M, D).
    """
    x, s = ctx.task.test_set()
    x, s = x.detach().float().cpu(), s.detach().float().cpu()
    mask = ideal_binary_mask if ctx.config.method == "ibm" else ideal_ratio_mask
    return MethodOutput(estimates=mask(s, x), train_seconds=0.0, epochs=0, device="cpu")
