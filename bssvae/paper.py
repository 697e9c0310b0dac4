"""The paper's published numbers, transcribed once: every page, script and benchmark that quotes them reads them here.

J. Neri, R. Badeau, P. Depalle, "Unsupervised Blind Source Separation with Variational Auto-Encoders",
EUSIPCO 2021, Tables II and III. None of these is a result of ours. The paper gives no spread over seeds, no
test-set size and no scoring convention (the Table II page of the book discusses what they could have been).
"""

from __future__ import annotations

import math
from types import MappingProxyType

from .errors import check_int, check_real

#: Read-only: a page that quotes them cannot change them by accident.
#: Table II, MNIST pairs (M = 2): (method, K) -> (PSNR dB, SSIM). The paper has no K = 4 row, no plain-VAE or
#: oracle column and no GLO result for K = 3.
TABLE_II: MappingProxyType[tuple[str, int], tuple[float, float]] = MappingProxyType({
    ("nmf", 2): (17.22, 0.50), ("ae", 2): (15.96, 0.43), ("glo", 2): (24.63, 0.86),
    ("mixit", 2): (25.69, 0.88), ("vaem", 2): (26.69, 0.93),
    ("nmf", 3): (18.27, 0.44), ("ae", 3): (16.30, 0.43),
    ("mixit", 3): (25.41, 0.69), ("vaem", 3): (27.68, 0.94),
})

#: Table III, MUMS instrument-note spectrogram pairs, BSS Eval in dB: method -> {"si_sdr", "sir", "sar"}, in the
#: paper's column order. The paper does not state K for it.
TABLE_III: MappingProxyType[str, MappingProxyType[str, float]] = MappingProxyType({
    method: MappingProxyType(dict(zip(("si_sdr", "sir", "sar"), scores))) for method, scores in (
        ("nmf", (5.40, 16.93, 7.96)),
        ("mixit", (6.64, 17.59, 8.26)),
        ("vae", (14.33, 29.92, 14.87)),
        ("vaem", (17.10, 29.55, 18.20)),
        ("ibm", (23.97, 48.89, 24.06)),
        ("irm", (22.66, 34.39, 23.23)),
    )})

#: Decimals the paper prints: PSNR and BSS Eval in dB to 2, SSIM to 2.
DECIMALS = 2

#: VAEM, K = 2 on MNIST (Table II): the PSNR and SSIM our targets are set against.
VAEM_K2_PSNR, VAEM_K2_SSIM = TABLE_II[("vaem", 2)]


def table_ii(method: str, k: int) -> tuple[float, float] | None:
    """Table II's (PSNR dB, SSIM) for ``method`` at ``k`` sources, or None where the paper has no such cell."""
    return TABLE_II.get((method, check_int("k", k, minimum=1)))


def rounding_floor(published: float, decimals: int = DECIMALS) -> float:
    """The lowest non-negative value that rounds half up to ``published`` with ``decimals`` digits: 0.925 for the
    paper's SSIM of 0.93, which stands for any value in [0.925, 0.935). Every number the paper prints is
    non-negative; a negative ``published`` is refused."""
    decimals = check_int("decimals", decimals, minimum=0)
    check_real("published", published, expected="a non-negative number as the paper prints", low=0)
    return round(published - 0.5 * 10.0 ** -decimals, decimals + 1)


def reads_as(value: float, published: float, decimals: int = DECIMALS) -> bool:
    """Whether ``value``, rounded half up in decimal to ``decimals`` digits as the paper's numbers are read here,
    shows ``published`` or more: an SSIM of 0.926 or 0.925 reads as the paper's 0.93, one of 0.924 does not. NaN
    never does. (Python's own formatting rounds the binary float, so ``f"{0.925:.2f}"`` may print 0.92: this rule is
    the decimal one.)"""
    floor = rounding_floor(published, decimals)
    return not math.isnan(value) and value >= floor
