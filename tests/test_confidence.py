"""bssvae.confidence: intervals over seeds and paired comparisons, against hand computations."""
from __future__ import annotations

import math

import pytest

from bssvae.confidence import (Interval, compare, exact, mean_difference, paired_difference, t_interval)
from bssvae.errors import BssvaeError

#: Student's t quantiles at 0.975 from a printed table (2 and 3 degrees of freedom).
T975 = {2: 4.302653, 3: 3.182446}


def test_t_interval_of_three_seeds_is_t_times_s_over_root_n():
    i = t_interval([1.0, 2.0, 3.0])  # mean 2, sample standard deviation 1
    assert (i.mean, i.n) == (2.0, 3)
    assert i.half == pytest.approx(T975[2] / math.sqrt(3), abs=1e-6)
    assert (i.low, i.high) == pytest.approx((2 - i.half, 2 + i.half))
    assert i.text() == f"2.00 ± {T975[2] / math.sqrt(3):.2f}"


def test_one_seed_has_no_interval_and_an_oracle_an_exact_one():
    one = t_interval([20.5])
    assert one.mean == 20.5 and math.isnan(one.half) and not one.known and one.text() == "20.50"
    oracle = exact(21.16)
    assert oracle.known and oracle.half == 0.0 and (oracle.low, oracle.high) == (21.16, 21.16)
    assert oracle.text(1) == "21.2"
    assert t_interval([2.0, 2.0]).text() == "2.00 ± 0.00"  # two seeds that agree: an interval, of zero width


def test_t_interval_refuses_no_scores_and_nan():
    with pytest.raises(BssvaeError, match="at least one score"):
        t_interval([])
    with pytest.raises(BssvaeError, match="1 NaN of 2"):
        t_interval([1.0, float("nan")])
    with pytest.raises(BssvaeError, match="confidence level"):
        t_interval([1.0, 2.0], level=95)


def test_compare_says_disjoint_only_when_the_intervals_do_not_touch():
    a, b = Interval(10.0, 1.0, 3), Interval(12.5, 1.0, 3)
    assert compare(a, b) == "below" and compare(b, a) == "above"
    assert compare(a, Interval(12.0, 1.0, 3)) == "overlap"  # they share the point 11
    assert compare(exact(12.0), Interval(10.0, 2.5, 3)) == "overlap"
    assert compare(exact(12.0), Interval(10.0, 1.9, 3)) == "above"
    assert compare(a, t_interval([11.0])) == "unknown"
    assert compare(Interval(float("nan"), float("nan"), 0), a) == "unknown"


def test_paired_difference_matches_the_hand_computed_t_test():
    d = paired_difference([1, 2, 3, 4], [0, 2, 2, 2])  # differences 1, 0, 1, 2: mean 1, s = sqrt(2/3)
    sem = math.sqrt(2 / 3) / 2
    assert (d.n, d.mean) == (4, 1.0) and d.sem == pytest.approx(sem)
    assert (d.low, d.high) == pytest.approx((1 - T975[3] * sem, 1 + T975[3] * sem), abs=1e-5)
    assert d.half == pytest.approx(T975[3] * sem, abs=1e-5) and not d.excludes_zero
    # Two-sided p of t = 1 / sem = sqrt(6) with 3 degrees of freedom, from the t distribution's closed form at 3:
    # p = 1 - (2 / pi) (x / (1 + x^2) + atan x), x = t / sqrt(3)
    x = (1 / sem) / math.sqrt(3)
    assert d.pvalue == pytest.approx(1 - 2 / math.pi * (x / (1 + x * x) + math.atan(x)), abs=1e-9)
    assert mean_difference([1, 0, 1, 2]) == d


def test_paired_difference_excludes_zero_when_every_seed_gains_alike_enough():
    d = paired_difference([21.0, 21.2, 21.1], [20.0, 20.1, 20.05])
    assert d.excludes_zero and d.low > 0 and d.pvalue < 0.05
    same = paired_difference([1.0, 2.0], [0.5, 1.5])  # every seed +0.5: no scatter, no t statistic
    assert (same.mean, same.sem, same.low, same.high, same.pvalue) == (0.5, 0.0, 0.5, 0.5, 0.0)
    assert paired_difference([1.0, 2.0], [1.0, 2.0]).pvalue == 1.0


def test_paired_difference_of_one_seed_has_no_test_and_unequal_sides_are_refused():
    one = paired_difference([2.0], [1.5])
    assert one.n == 1 and one.mean == 0.5 and math.isnan(one.pvalue) and not one.excludes_zero
    with pytest.raises(BssvaeError, match="got 3 and 2"):
        paired_difference([1, 2, 3], [1, 2])
