"""rexbench.stats on samples whose statistics are computed by hand."""

import math

import numpy as np
import pytest

from rexbench import stats

TEN = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]


def test_summary_of_ten_values():
    s = stats.summarize(TEN, batch_size=2)
    assert s.n == 10
    assert s.median == 55.0 and s.mean == 55.0 and s.min == 10.0 and s.max == 100.0
    # linear interpolation: position (n - 1) p, e.g. p90 -> 8.1 -> 90 + 0.1 * 10
    assert s.p90 == pytest.approx(91.0) and s.p99 == pytest.approx(99.1)
    assert (
        s.q1 == pytest.approx(32.5) and s.q3 == pytest.approx(77.5) and s.iqr == pytest.approx(45.0)
    )
    # sum of squared deviations = 2 * (45^2 + 35^2 + 25^2 + 15^2 + 5^2) = 8250; / 9
    assert s.std == pytest.approx(math.sqrt(8250 / 9))
    # binomial order statistics for n = 10: ranks 2 and 9, coverage 1 - 2 * 11/1024
    assert (s.ci_low, s.ci_high) == (20.0, 90.0)
    assert s.ci_coverage == pytest.approx(1 - 22 / 1024)
    assert s.throughput == pytest.approx(2 * 1e9 / 55.0)
    assert s.noise == pytest.approx(45 / 55) and s.noisy


def test_quiet_samples_are_not_noisy():
    s = stats.summarize([100, 101, 102, 103, 104, 105, 106, 107, 108], batch_size=1)
    assert s.median == 104.0 and s.iqr == pytest.approx(4.0)
    assert s.noise == pytest.approx(4 / 104) and not s.noisy


@pytest.mark.parametrize(
    "n, rank, coverage",
    [
        # P(X <= k) for X ~ Bin(n, 1/2): n=6 -> 1/64; n=20 -> P(X<=5) = 21700/2^20
        (6, 1, 1 - 2 / 64),
        (20, 6, 1 - 2 * 21700 / 2**20),
    ],
)
def test_median_ci_ranks(n, rank, coverage):
    values = list(range(1, n + 1))
    low, high, cov = stats.median_ci(values)
    assert (low, high) == (rank, n + 1 - rank)
    assert cov == pytest.approx(coverage)
    assert cov >= 0.95


def test_median_ci_of_five_samples_is_the_range_with_its_coverage():
    low, high, cov = stats.median_ci([5, 1, 4, 2, 3])
    assert (low, high) == (1.0, 5.0)
    assert cov == pytest.approx(1 - 2 / 32)


def test_median_ci_large_n_is_tight_and_unsorted_input_ok():
    rng = np.random.default_rng(0)
    values = rng.permutation(np.arange(1, 1001))
    low, high, cov = stats.median_ci(values)
    # normal approximation of the ranks: n/2 -/+ 1.96 sqrt(n)/2 = 500 -/+ 31
    assert 465 <= low <= 470 and 531 <= high <= 536
    assert 0.95 <= cov < 0.96


def test_throughput():
    assert stats.throughput(20e6, 1) == pytest.approx(50.0)  # 20 ms per image
    assert stats.throughput(1e9, 64) == pytest.approx(64.0)


def test_empty_or_nan_samples_are_refused():
    with pytest.raises(ValueError):
        stats.summarize([])
    with pytest.raises(ValueError):
        stats.summarize([1.0, float("nan")])


def test_mann_whitney_hand_computed():
    # a = 1,2,3 ; b = 4,5,6: a is always smaller -> U_a = 0, every pair says b slower
    m = stats.mann_whitney([1, 2, 3], [4, 5, 6])
    assert m.u_a == 0.0 and m.prob_b_slower == 1.0
    # mu = 4.5, var = 9/12 * 7 = 5.25; continuity-corrected z = (4.5 - 0.5) / sqrt(5.25)
    z = 4.0 / math.sqrt(5.25)
    assert m.p_b_slower == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))
    assert m.p_two_sided == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert m.z == pytest.approx(-4.5 / math.sqrt(5.25))


def test_mann_whitney_ties_use_midranks_and_tie_correction():
    # all = 1,2,2,3 | a = 1,2 b = 2,3: ranks 1, 2.5, 2.5, 4 -> R_a = 3.5, U_a = 0.5
    m = stats.mann_whitney([1, 2], [2, 3])
    assert m.u_a == 0.5
    # tie group of 2: sum(t^3 - t) = 6; var = 4/12 * (5 - 6/12) = 1.5
    assert m.z == pytest.approx((0.5 - 2.0) / math.sqrt(1.5))
    identical = stats.mann_whitney([7, 7, 7], [7, 7])
    assert identical.p_two_sided == 1.0 and identical.p_b_slower == 1.0


def test_mann_whitney_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(42)
    for n_a, n_b, shift in [(30, 45, 2), (200, 150, 0), (12, 9, 5)]:
        a = rng.integers(0, 40, n_a)  # integers: many ties
        b = rng.integers(shift, 40 + shift, n_b)
        mine = stats.mann_whitney(a, b)
        two = scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
        less = scipy_stats.mannwhitneyu(a, b, alternative="less", method="asymptotic")
        assert mine.u_a == two.statistic
        assert mine.p_two_sided == pytest.approx(two.pvalue, rel=1e-9)
        assert mine.p_b_slower == pytest.approx(less.pvalue, rel=1e-9)


def test_mann_whitney_detects_a_clear_slowdown_only_one_way():
    rng = np.random.default_rng(1)
    a = rng.normal(100, 5, 200)
    m = stats.mann_whitney(a, a * 1.15)
    assert m.p_b_slower < 1e-6 and m.p_two_sided < 1e-6
    assert stats.mann_whitney(a * 1.15, a).p_b_slower > 0.99


def test_ratio_interval_is_seeded_and_brackets_the_ratio():
    rng = np.random.default_rng(3)
    a = stats.Samples(rng.normal(100, 5, 300))
    b = stats.Samples(rng.normal(115, 5, 300))
    first = stats.ratio_interval(a, b, alpha=0.025, n_boot=500, seed=7)
    again = stats.ratio_interval(a, b, alpha=0.025, n_boot=500, seed=7)
    assert first == again
    assert first.ratio == pytest.approx(np.median(b.model_ns) / np.median(a.model_ns))
    assert first.low < first.ratio < first.high
    assert 1.10 < first.low < first.high < 1.20
    other = stats.ratio_interval(a, b, alpha=0.025, n_boot=500, seed=8)
    assert (other.low, other.high) != (first.low, first.high)


def test_ratio_interval_of_constant_samples():
    ci = stats.ratio_interval(stats.Samples([10, 10, 10]), stats.Samples([15, 15]), n_boot=100)
    assert ci == (1.5, 1.5, 1.5)


def test_ratio_interval_other_statistics():
    a, b = stats.Samples(TEN), stats.Samples([2 * v for v in TEN])
    assert stats.ratio_interval(a, b, "mean", n_boot=100).ratio == pytest.approx(2.0)
    assert stats.ratio_interval(a, b, "p90", n_boot=100).ratio == pytest.approx(2.0)
    assert stats.quantile_of("p90") == 0.9 and stats.quantile_of("p100") is None


def test_anchor_cancels_a_uniformly_slower_machine():
    """Anchored by default when both runs carry anchor samples (the gate's drift correction)."""
    rng = np.random.default_rng(4)
    model, anchor = rng.normal(100, 2, 200), rng.normal(10, 0.2, 200)
    base = stats.Samples(model, anchor)
    slow = stats.Samples(model * 1.3, anchor * 1.3)
    anchored = stats.ratio_interval(base, slow, n_boot=200)
    assert anchored.ratio == pytest.approx(1.0)
    assert anchored.low < 1.0 < anchored.high
    raw = stats.ratio_interval(base, slow, n_boot=200, anchored=False)
    assert raw.ratio == pytest.approx(1.3) and raw.low > 1.2
