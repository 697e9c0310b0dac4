"""How sure a score over seeds is: Student-t intervals of a mean, and paired differences between two recipes.

Each training seed is one draw of a run's initialisation and order of training mixtures, scored on a fixed test
set, so these describe the variability *between training runs*. The book's tables (Table II, Table III), the
README's tables and the book's comparisons of recipes (its Recipe choices page) all compute their intervals and
tests here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal

import numpy as np
from scipy import stats

from .errors import BssvaeError, check_real

#: The confidence level of every interval the book and the README print.
LEVEL = 0.95

Order = Literal["above", "below", "overlap", "unknown"]


def _values(name: str, values: Iterable[float]) -> np.ndarray:
    v = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float).ravel()
    if v.size == 0:
        raise BssvaeError(f"{name}: expected at least one score, got none")
    if np.isnan(v).any():
        raise BssvaeError(f"{name}: expected scores, got {int(np.isnan(v).sum())} NaN of {v.size} "
                          "(drop the seeds a run is missing for before)")
    return v


def _check_level(level: float) -> None:
    check_real("level", level, expected="a confidence level in (0, 1)", low=0, high=1, low_open=True, high_open=True)


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` seeds and the half-width of its confidence interval.

    ``half`` is NaN for one seed of a trained method (no interval can be drawn from it) and 0 for an exact score
    (:func:`exact`: an oracle, which no seed changes).
    """

    mean: float
    half: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half

    @property
    def known(self) -> bool:
        """Whether the interval exists (not NaN)."""
        return not (math.isnan(self.mean) or math.isnan(self.half))

    def text(self, digits: int = 2) -> str:
        """'mean ± half' (the value alone for one seed, an exact score, or no interval)."""
        if not self.known or self.n <= 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.half:.{digits}f}"


def t_interval(values: Iterable[float], level: float = LEVEL) -> Interval:
    """The mean of ``values`` (one score per seed) and the half-width of its Student-t confidence interval,
    t_{(1+level)/2, n-1} s / sqrt(n) with s the sample standard deviation; NaN for one value."""
    _check_level(level)
    v = _values("t_interval", values)
    n = v.size
    half = float(stats.t.ppf((1 + level) / 2, n - 1) * v.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return Interval(float(v.mean()), half, n)


def exact(value: float) -> Interval:
    """A score that no seed changes (an oracle mask on a fixed test set): an interval of zero width."""
    return Interval(float(value), 0.0, 1)


def compare(a: Interval, b: Interval) -> Order:
    """'above' or 'below' when ``a``'s interval lies wholly above or below ``b``'s, 'overlap' when they share a
    point (the seeds at hand do not tell the two apart), 'unknown' when either has no interval."""
    if not (a.known and b.known):
        return "unknown"
    return "above" if a.low > b.high else "below" if a.high < b.low else "overlap"


@dataclass(frozen=True)
class PairedDifference:
    """``a - b`` seed by seed: the mean difference, its standard error, its confidence interval and the two-sided
    paired t-test's p-value (all four NaN for fewer than two seeds)."""

    n: int
    mean: float
    sem: float
    low: float
    high: float
    pvalue: float
    level: float = LEVEL

    @property
    def half(self) -> float:
        """Half the width of the confidence interval."""
        return (self.high - self.low) / 2

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval leaves out zero (at ``level``, a difference the seeds' scatter does not explain)."""
        return self.low > 0.0 or self.high < 0.0


def mean_difference(differences: Iterable[float], level: float = LEVEL) -> PairedDifference:
    """The mean of per-seed differences between two recipes (one recipe's score minus the other's, seed by seed),
    with its standard error, confidence interval and the two-sided t-test of a zero mean
    (:func:`scipy.stats.ttest_1samp`, the same test as :func:`scipy.stats.ttest_rel` on the two sides).

    Where every difference is exactly the same, the t statistic is undefined (scipy warns and gives NaN for a zero
    mean): the standard error is 0, the interval [m, m], and p is 0 for a non-zero m and 1 for m = 0. Differences
    equal only up to rounding go through scipy as they are."""
    _check_level(level)
    d = _values("mean_difference", differences)
    m = float(d.mean())
    if d.size < 2:
        return PairedDifference(int(d.size), m, math.nan, math.nan, math.nan, math.nan, level)
    if not d.std(ddof=1) > 0:  # every seed moved by the same amount: the t statistic is not defined
        return PairedDifference(int(d.size), m, 0.0, m, m, 1.0 if m == 0.0 else 0.0, level)
    test = stats.ttest_1samp(d, 0.0)
    ci = test.confidence_interval(level)
    return PairedDifference(int(d.size), m, float(d.std(ddof=1) / math.sqrt(d.size)), float(ci.low), float(ci.high),
                            float(test.pvalue), level)


def paired_difference(a: Iterable[float], b: Iterable[float], level: float = LEVEL) -> PairedDifference:
    """Compare two recipes run on the same seeds, ``a[i]`` and ``b[i]`` the scores of seed i:
    :func:`mean_difference` of ``a - b``."""
    x, y = _values("paired_difference: a", a), _values("paired_difference: b", b)
    if x.size != y.size:
        raise BssvaeError(f"paired_difference: expected one score per seed on both sides, got {x.size} and {y.size}")
    return mean_difference(x - y, level)
