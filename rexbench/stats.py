"""Statistics of latency samples: summaries, a confidence interval of the median, and the two tests
the CI gate uses (Mann-Whitney U; bootstrap interval of a ratio of statistics, drift-anchored or
raw, which the report also uses for the paper's speed claims). Pure numpy.

Conventions: samples are nanoseconds (ints or floats); percentiles use numpy's default linear
interpolation (Hyndman & Fan 1996, definition 7, the same as R's default); std is the sample
standard deviation (ddof=1). Nothing is rounded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

NOISE_THRESHOLD = (
    0.10  # IQR/median above this is flagged, as torch.utils.benchmark's Measurement does
)

ArrayLike = Sequence[float] | np.ndarray


def _array(samples: ArrayLike, name: str = "samples") -> np.ndarray:
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contain NaN or infinite values")
    return values


def _binom_half_cdf(n: int) -> np.ndarray:
    """P(X <= k) for X ~ Binomial(n, 1/2), k = 0..n, via log-gamma (exact enough for any n)."""
    log_half_n = n * math.log(0.5)
    lg_n = math.lgamma(n + 1)
    log_pmf = np.array(
        [lg_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half_n for k in range(n + 1)]
    )
    return np.cumsum(np.exp(log_pmf))


def median_ci(samples: ArrayLike, level: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    With X ~ Binomial(n, 1/2) counting samples below the true median, [x_(l), x_(n+1-l)] (1-based
    order statistics) covers the median with probability 1 - 2 P(X <= l - 1). l is the largest
    rank keeping that coverage >= level (Conover, Practical Nonparametric Statistics, 3rd ed.,
    section 3.2; Hollander, Wolfe & Chicken, Nonparametric Statistical Methods, section 3.6).

    Returns (low, high, coverage); coverage is the exact coverage of the returned interval. Below
    6 samples no interval reaches 95%: the range (min, max) is returned with its smaller coverage.
    """
    x = np.sort(_array(samples))
    n = x.size
    cdf = _binom_half_cdf(n)
    alpha = 1.0 - level
    # ranks 1..n//2 with P(X <= rank - 1) <= alpha / 2; the largest gives the tightest interval
    ok = [r for r in range(1, n // 2 + 1) if cdf[r - 1] <= alpha / 2 + 1e-12]
    rank = ok[-1] if ok else 1
    coverage = float(1.0 - 2.0 * cdf[rank - 1]) if n > 1 else 0.0
    return float(x[rank - 1]), float(x[n - rank]), coverage


@dataclass(frozen=True)
class Summary:
    """Summary of one set of samples (same unit as the samples, nanoseconds in rexbench).

    throughput is images per second for `batch_size` images per sample; noisy is IQR/median > 10%.
    """

    n: int
    median: float
    mean: float
    min: float
    max: float
    p90: float
    p99: float
    std: float
    q1: float
    q3: float
    iqr: float
    ci_low: float
    ci_high: float
    ci_coverage: float
    batch_size: int
    throughput: float
    noise: float
    noisy: bool


def summarize(samples_ns: ArrayLike, batch_size: int = 1, level: float = 0.95) -> Summary:
    """Every statistic the profile table and records show, from raw nanosecond samples."""
    x = _array(samples_ns)
    q1, median, q3, p90, p99 = np.percentile(x, [25, 50, 75, 90, 99])
    low, high, coverage = median_ci(x, level)
    iqr = float(q3 - q1)
    noise = iqr / median if median > 0 else math.inf
    return Summary(
        n=int(x.size),
        median=float(median),
        mean=float(x.mean()),
        min=float(x.min()),
        max=float(x.max()),
        p90=float(p90),
        p99=float(p99),
        std=float(x.std(ddof=1)) if x.size > 1 else 0.0,
        q1=float(q1),
        q3=float(q3),
        iqr=iqr,
        ci_low=low,
        ci_high=high,
        ci_coverage=coverage,
        batch_size=batch_size,
        throughput=throughput(float(median), batch_size),
        noise=float(noise),
        noisy=bool(noise > NOISE_THRESHOLD),
    )


def throughput(latency_ns: float, batch_size: int) -> float:
    """Images per second when a batch of `batch_size` takes `latency_ns` nanoseconds."""
    return batch_size * 1e9 / latency_ns if latency_ns > 0 else math.inf


def _normal_sf(z: float) -> float:
    """Upper tail of the standard normal, 1 - Phi(z) = erfc(z / sqrt 2) / 2."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _midranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks 1..n with ties given their average rank, and the size of every tie group."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    counts = np.diff(np.r_[starts, values.size])
    avg = starts + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(avg, counts)
    return ranks, counts


@dataclass(frozen=True)
class MannWhitney:
    """Mann-Whitney U test of samples a (e.g. baseline) against b (e.g. now).

    u_a: U statistic of a (the number of pairs with a > b, ties counting 1/2); equals
    scipy.stats.mannwhitneyu(a, b).statistic. prob_b_slower = P(b > a) + P(b = a)/2 = 1 - u_a/(n_a n_b),
    the common-language effect size. p_two_sided tests "same distribution"; p_b_slower tests the
    one-sided alternative "b tends to be larger (slower) than a".
    """

    n_a: int
    n_b: int
    u_a: float
    z: float
    p_two_sided: float
    p_b_slower: float

    @property
    def prob_b_slower(self) -> float:
        return 1.0 - self.u_a / (self.n_a * self.n_b)


def mann_whitney(a: ArrayLike, b: ArrayLike) -> MannWhitney:
    """Mann-Whitney U test with the normal approximation, tie correction and continuity correction.

    U_a = R_a - n_a (n_a + 1) / 2 with R_a the rank sum of a among all samples (midranks for ties).
    Under H0, mean n_a n_b / 2 and variance n_a n_b / 12 * ((n + 1) - sum(t^3 - t) / (n (n - 1))),
    t the size of each tie group (Hollander, Wolfe & Chicken, section 4.1; Lehmann, Nonparametrics,
    1975, ch. 1). A continuity correction of 1/2 is applied, as scipy's default `use_continuity`.
    Suited to the sample sizes of latency runs (tens to thousands); the exact test is not offered.
    """
    x, y = _array(a, "a"), _array(b, "b")
    n_a, n_b = x.size, y.size
    n = n_a + n_b
    ranks, ties = _midranks(np.concatenate([x, y]))
    u_a = float(ranks[:n_a].sum() - n_a * (n_a + 1) / 2.0)
    mu = n_a * n_b / 2.0
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum()) / (n * (n - 1)) if n > 1 else 0.0
    var = n_a * n_b / 12.0 * ((n + 1) - tie_term)
    z, p_two, p_b_slower = 0.0, 1.0, 1.0  # every value identical: no evidence of any difference
    if var > 0:
        sd = math.sqrt(var)
        z = (u_a - mu) / sd
        p_two = min(1.0, 2.0 * _normal_sf((abs(u_a - mu) - 0.5) / sd))
        # b slower <=> a tends smaller <=> u_a small: P(U_a <= observed), with continuity correction
        p_b_slower = min(1.0, _normal_sf((mu - u_a - 0.5) / sd))
    return MannWhitney(n_a=n_a, n_b=n_b, u_a=u_a, z=z, p_two_sided=p_two, p_b_slower=p_b_slower)


@dataclass(frozen=True)
class Samples:
    """Raw per-iteration times (ns) of one run, and the drift-anchor times of the same run if any."""

    model_ns: Sequence[float]
    anchor_ns: Sequence[float] | None = None
    batch_size: int = 1


def quantile_of(stat: str) -> float | None:
    """ "p90" -> 0.9 (pNN with 0 < NN < 100); None for anything else."""
    m = re.fullmatch(r"p(\d{1,2})", stat)
    return int(m.group(1)) / 100.0 if m and 0 < int(m.group(1)) < 100 else None


def statistic(values: np.ndarray, stat: str, axis: int | None = None) -> np.ndarray:
    """ "mean", "median" or "pNN" of `values` (along `axis`); quantiles as np.quantile (linear)."""
    if stat == "mean":
        return values.mean(axis=axis)
    q = 0.5 if stat == "median" else quantile_of(stat)
    return np.quantile(values, q, axis=axis)


def _boot_stats(x: np.ndarray, stat: str, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """The statistic of n_boot resamples (with replacement) of x, in chunks of bounded memory."""
    out = np.empty(n_boot)
    chunk = max(1, 2_000_000 // x.size)
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        out[start : start + k] = statistic(x[rng.integers(0, x.size, (k, x.size))], stat, axis=1)
    return out


class RatioInterval(NamedTuple):
    """A ratio of statistics and the two bootstrap quantiles around it."""

    ratio: float
    low: float
    high: float


def ratio_interval(
    base: Samples,
    cur: Samples,
    stat: str = "median",
    *,
    alpha: float = 0.01,
    n_boot: int = 2000,
    seed: int = 0,
    anchored: bool | None = None,
    anchor_stat: str | None = None,
) -> RatioInterval:
    """S(cur) / S(base) for the statistic S, and its alpha and 1 - alpha bootstrap quantiles.

    Anchored (default: when both runs carry anchor samples), each run's S is divided by its own
    anchor's S (`anchor_stat`, default `stat`): [S(cur) / S(anchor_cur)] / [S(base) / S(anchor_base)],
    the drift-corrected ratio of the CI gate (rexbench.gate.checks; docs/gate.md). Percentile
    bootstrap (Efron & Tibshirani, An Introduction to the Bootstrap, 1993, ch. 13): model and anchor
    samples of both runs are resampled independently with replacement, n_boot times, so the
    anchor's own noise widens the interval. Seeded numpy Generator: same inputs, same interval.
    The gate's defaults (alpha 0.01, 2,000 resamples, seed 0) are the ones it was calibrated with.
    """
    if anchored is None:
        anchored = all(s.anchor_ns is not None and len(s.anchor_ns) > 0 for s in (base, cur))
    astat = anchor_stat or stat
    rng = np.random.default_rng(seed)
    mb, mc = np.asarray(base.model_ns, float), np.asarray(cur.model_ns, float)
    ratio = float(statistic(mc, stat) / statistic(mb, stat))
    boot = _boot_stats(mc, stat, n_boot, rng) / _boot_stats(mb, stat, n_boot, rng)
    if anchored:
        ab, ac = np.asarray(base.anchor_ns, float), np.asarray(cur.anchor_ns, float)
        ratio *= float(statistic(ab, astat) / statistic(ac, astat))
        boot *= _boot_stats(ab, astat, n_boot, rng) / _boot_stats(ac, astat, n_boot, rng)
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return RatioInterval(ratio, float(low), float(high))
