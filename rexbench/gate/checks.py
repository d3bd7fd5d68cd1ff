"""Regression gates: parsed checks ("params:=", "latency.median:+10%") -> verdicts that explain themselves.

Pure (numpy only; no torch, Typer or Rich). As in pytest-benchmark and asv: a check names a metric and a
tolerance, like pytest-benchmark's `--benchmark-compare-fail=mean:5%`, and a latency regression
needs both the tolerance exceeded and a statistically significant difference on the raw samples
(asv's rule: `asv compare --factor` together with its significance test), so noise does not fail CI.

Check syntax, `METRIC:TOLERANCE`:

* counts (`params` = `params_total`, `params_trainable`, `macs_conv`, `macs_fvcore`, `macs_thop`,
  `flops_torch`): `=` exact (any change is a regression), or `+N%` (growth up to N% allowed).
* `latency.STAT` (STAT = `median`, `mean` or `pNN`, e.g. `p90`): `+N%`, the slowdown allowed.
* `throughput`: `-N%`, the drop of images/s allowed (judged on the median latency).
* `instructions`: `+N%`, the growth of instructions per call allowed (valgrind's callgrind,
  rexbench.measure.counting.instructions; a count that load cannot move, so no statistics: over the limit is
  a regression, provided both sides were counted by the same torch, valgrind and CPU architecture).

Latency rule (`compare_latency`). Let S be the statistic. When both records carry drift-anchor
samples (a fixed reference workload timed interleaved with the model, `rexbench.measure.timing.anchor`), each
run's model samples are divided by the same statistic of that run's own anchor samples:
R = [S(model_now) / S(anchor_now)] / [S(model_base) / S(anchor_base)], so a machine that is
uniformly x% slower now cancels out. Without anchors on both sides R = S(model_now) /
S(model_base) ("raw"). With L = 1 + N/100 the limit (1 / (1 - N/100) for throughput), alpha the
one-sided significance level:

* regression   - R > L, and the slowdown is significant: the one-sided Mann-Whitney U test of the
                 normalised samples gives p < alpha AND the bootstrap lower bound of R (its alpha
                 quantile, resampling the four sample sets independently:
                 `rexbench.stats.ratio_interval`) is > 1.
* pass         - R <= L and the bootstrap upper bound of R (1 - alpha quantile) is <= L.
* inconclusive - anything else: R > L but not significant, R <= L but the data cannot rule out a
                 slowdown beyond L, or too few samples (fewer than MIN_SAMPLES, or fewer than 5
                 samples on either side of the requested percentile).
* not comparable - the baseline ran on other hardware (machine_id differs); see `not_comparable`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rexbench.errors import RexbenchError
from rexbench.measure.counting.counts import NUMBERS
from rexbench.stats import Samples, mann_whitney, quantile_of, ratio_interval, statistic

PASS = "pass"
REGRESSION = "regression"
INCONCLUSIVE = "inconclusive"
NOT_COMPARABLE = "not comparable"
OUTCOMES = (PASS, REGRESSION, INCONCLUSIVE, NOT_COMPARABLE)

COUNT_METRICS = NUMBERS  # each compared exactly
ALIASES = {"params": "params_total", "latency": "latency.median"}
#: Defaults chosen from the calibration in benchmarks/gate_calibration.py (docs/gate.md).
DEFAULT_CHECKS = ("params_total:=", "params_trainable:=", "macs_conv:=", "latency.p10:+10%")
ALPHA = 0.01
N_BOOT = 2000
MIN_SAMPLES = 20
_TAIL_SAMPLES = 5  # samples needed on each side of a percentile for its ratio to mean anything
_SYNTAX = (
    "expected METRIC:= or METRIC:+N% (counts), latency.STAT:+N% (STAT median, mean or pNN), "
    "throughput:-N% or instructions:+N%"
)
_TOLERANCE = re.compile(r"(=)|([+-])(\d+(?:\.\d*)?|\.\d+)%")


@dataclass(frozen=True)
class Check:
    """One parsed check. kind: "count", "latency", "throughput" or "instructions"; tolerance:
    fraction or None (=)."""

    metric: str
    kind: str
    tolerance: float | None
    text: str

    @property
    def statistic(self) -> str:
        """ "median", "mean" or "pNN" for latency checks; "median" for throughput."""
        return self.metric.partition(".")[2] if self.kind == "latency" else "median"

    @property
    def limit(self) -> float | None:
        """The largest acceptable ratio current / baseline of the compared latency (or count)."""
        if self.tolerance is None:
            return None
        if self.kind == "throughput":
            return 1.0 / (1.0 - self.tolerance)
        return 1.0 + self.tolerance


def parse_check(text: str) -> Check:
    """`"latency.p90:+20%"` -> Check; RexbenchError with the accepted forms for anything else."""
    raw = str(text).strip()
    metric, sep, tol = (s.strip() for s in raw.rpartition(":"))
    if not sep or not metric:
        raise RexbenchError(f"bad check {raw!r}: {_SYNTAX}")
    metric = ALIASES.get(metric.lower(), metric.lower())
    match = _TOLERANCE.fullmatch(tol)
    if match is None:
        raise RexbenchError(f"bad tolerance {tol!r} in check {raw!r}: {_SYNTAX}")
    exact, sign, number = match.groups()
    fraction = None if exact else float(number) / 100.0
    canonical = f"{metric}:{'=' if exact else f'{sign}{number}%'}"
    if metric in COUNT_METRICS:
        if sign == "-":
            raise RexbenchError(f"check {raw!r}: counts take = or +N% (the growth allowed)")
        return Check(metric, "count", fraction, canonical)
    if metric == "throughput":
        if sign != "-" or not 0 < fraction < 1:
            raise RexbenchError(f"check {raw!r}: throughput takes -N% with 0 < N < 100, e.g. -10%")
        return Check(metric, "throughput", fraction, canonical)
    if metric == "instructions":
        if sign != "+" or fraction <= 0:
            raise RexbenchError(
                f"check {raw!r}: instructions take +N% with N > 0 (the growth allowed)"
            )
        return Check(metric, "instructions", fraction, canonical)
    if metric.startswith("latency."):
        stat = metric.partition(".")[2]
        if stat not in ("median", "mean") and quantile_of(stat) is None:
            raise RexbenchError(
                f"check {raw!r}: unknown statistic {stat!r}; use median, mean or pNN"
            )
        if sign != "+" or fraction <= 0:
            raise RexbenchError(
                f"check {raw!r}: latency takes +N% with N > 0 (the slowdown allowed)"
            )
        return Check(metric, "latency", fraction, canonical)
    known = ", ".join(
        (*COUNT_METRICS, "params", "latency.median", "latency.p90", "throughput", "instructions")
    )
    raise RexbenchError(f"check {raw!r}: unknown metric {metric!r}; known: {known}")


def merge_checks(*groups: Sequence[str | Check]) -> list[Check]:
    """Parse and combine check lists in order; a later check on the same metric replaces an earlier one."""
    merged: dict[str, Check] = {}
    for group in groups:
        for item in group:
            check = item if isinstance(item, Check) else parse_check(item)
            merged.pop(check.metric, None)
            merged[check.metric] = check
    return list(merged.values())


# ------------------------------------------------------------------------------------ verdicts


@dataclass
class Verdict:
    """The outcome of one check on one model x configuration, with everything that decided it.

    baseline/current: the compared values (counts, or the statistic in ns; images/s for throughput).
    ratio: current / baseline (latency: anchor-normalised when `normalisation` is "anchor").
    limit: the largest acceptable ratio. ci: the (1 - 2 alpha) bootstrap interval of the ratio.
    """

    model: str
    config: str
    check: str
    outcome: str
    reason: str
    baseline: float | None = None
    current: float | None = None
    ratio: float | None = None
    limit: float | None = None
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    normalisation: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ci"] = list(self.ci) if self.ci else None
        return data


def compare_count(check: Check, baseline: int | None, current: int | None, **where: str) -> Verdict:
    """Exact (or +N%) comparison of one count; a count missing on either side is not comparable."""
    if baseline is None or current is None:
        side = "baseline" if baseline is None else "current run"
        return Verdict(
            **where,
            check=check.text,
            outcome=NOT_COMPARABLE,
            baseline=baseline,
            current=current,
            reason=f"no {check.metric} in the {side}",
        )
    ratio = current / baseline if baseline else (1.0 if current == baseline else math.inf)
    if check.tolerance is None:
        ok = current == baseline
        reason = "unchanged" if ok else f"changed by {current - baseline:+,} (exact check)"
    else:
        ok = ratio <= check.limit
        reason = f"{ratio - 1:+.2%} vs at most +{check.tolerance:.0%}"
    return Verdict(
        **where,
        check=check.text,
        outcome=PASS if ok else REGRESSION,
        reason=reason,
        baseline=baseline,
        current=current,
        ratio=ratio,
        limit=check.limit,
    )


def compare_latency(
    check: Check,
    base: Samples,
    cur: Samples,
    *,
    alpha: float = ALPHA,
    n_boot: int = N_BOOT,
    seed: int = 0,
    min_samples: int = MIN_SAMPLES,
    anchor_stat: str | None = None,
    **where: str,
) -> Verdict:
    """Apply the latency rule of the module docstring to one latency or throughput check."""
    stat, limit = check.statistic, check.limit
    astat = anchor_stat or stat
    anchored = bool(base.anchor_ns) and bool(cur.anchor_ns)
    norm = "anchor" if anchored else "raw"
    mb, mc = np.asarray(base.model_ns, float), np.asarray(cur.model_ns, float)
    shown_b, shown_c = float(statistic(mb, stat)), float(statistic(mc, stat))
    if check.kind == "throughput":
        shown_b, shown_c = base.batch_size * 1e9 / shown_b, cur.batch_size * 1e9 / shown_c
    verdict = Verdict(
        **where,
        check=check.text,
        outcome=INCONCLUSIVE,
        reason="",
        baseline=shown_b,
        current=shown_c,
        limit=limit,
        normalisation=norm,
    )
    if anchored:
        ab, ac = np.asarray(base.anchor_ns, float), np.asarray(cur.anchor_ns, float)
        verdict.details["anchor_stat"] = astat
        verdict.details["anchor_ns"] = [float(statistic(ab, astat)), float(statistic(ac, astat))]
    q = quantile_of(stat)
    need = max(min_samples, math.ceil(_TAIL_SAMPLES / min(q, 1 - q) - 1e-9) if q else 0)
    short = [n for n in (mb.size, mc.size) if n < need]
    if anchored:
        short += [n for n in (len(base.anchor_ns), len(cur.anchor_ns)) if n < min_samples]
    if short:
        verdict.reason = f"too few samples ({min(short)}; {stat} needs at least {need})"
        return verdict
    ratio, low, high = ratio_interval(
        base, cur, stat, alpha=alpha, n_boot=n_boot, seed=seed, anchored=anchored, anchor_stat=astat
    )
    xb = mb / verdict.details["anchor_ns"][0] if anchored else mb
    xc = mc / verdict.details["anchor_ns"][1] if anchored else mc
    p = mann_whitney(xb, xc).p_b_slower
    verdict.ratio, verdict.ci, verdict.p_value = ratio, (low, high), p
    what = "throughput drop" if check.kind == "throughput" else f"{stat} slowdown"
    change = f"{what} {_pct(ratio, check.kind)} ({norm}), allowed {_pct(limit, check.kind)}"
    verdict.outcome = latency_outcome(ratio, low, high, p, limit=limit, alpha=alpha)
    if verdict.outcome == REGRESSION:
        verdict.reason = f"{change}; significant (p={p:.2g} < {alpha:g}, CI low {low:.3f} > 1)"
    elif verdict.outcome == PASS:
        verdict.reason = f"{change}; CI high {high:.3f} <= {limit:.3f}"
    elif ratio > limit:
        verdict.reason = f"{change}, but not significant (p={p:.2g}, CI low {low:.3f})"
    else:
        verdict.reason = f"{change}; cannot rule out more (CI high {high:.3f} > {limit:.3f})"
    return verdict


def latency_outcome(
    ratio: float, low: float, high: float, p: float, limit: float, alpha: float
) -> str:
    """The latency rule: regression needs R > L and significance (p < alpha and CI low > 1);
    pass needs R <= L and CI high <= L; everything else is inconclusive."""
    if ratio > limit and p < alpha and low > 1.0:
        return REGRESSION
    if ratio <= limit and high <= limit:
        return PASS
    return INCONCLUSIVE


def _pct(ratio: float, kind: str) -> str:
    """A latency ratio as the change a reader expects: +12.0% slower, or -10.7% throughput."""
    return f"{1 / ratio - 1:+.1%}" if kind == "throughput" else f"{ratio - 1:+.1%}"


def compare_instructions(
    check: Check,
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
    differences: Sequence[str] = (),
    **where: str,
) -> Verdict:
    """Instructions per call, baseline vs current (each a record's `counts`): over the limit is a
    regression, at or under it a pass. Not comparable when either side was not counted, or when
    `differences` (torch, valgrind, architecture) say the counts come from different code."""
    base, cur = baseline.get("instructions"), current.get("instructions")
    verdict = Verdict(
        **where,
        check=check.text,
        outcome=NOT_COMPARABLE,
        reason="",
        baseline=base,
        current=cur,
        limit=check.limit,
    )
    if base is None or cur is None:
        side, flag = (
            ("baseline", "baseline save --instructions")
            if base is None
            else ("current run", "--instructions")
        )
        why = current.get("instructions_skipped") or baseline.get("instructions_skipped")
        verdict.reason = f"no instruction count in the {side} ({why or f'count it with {flag}'})"
        return verdict
    if differences:
        verdict.reason = f"counted by different code: {'; '.join(differences)}"
        return verdict
    spreads = [
        (side.get("instructions_method") or {}).get("spread") for side in (baseline, current)
    ]
    noise = max((s for s in spreads if s is not None), default=0.0)
    verdict.ratio = cur / base if base else math.inf
    verdict.details["repeat_spread"] = noise
    change = f"instructions {verdict.ratio - 1:+.3%}, allowed +{check.tolerance:.0%}"
    if verdict.ratio > check.limit:
        verdict.outcome, verdict.reason = REGRESSION, f"{change} (repeat spread {noise:.1e})"
    else:
        verdict.outcome, verdict.reason = PASS, change
    return verdict


def not_comparable(check: Check, reasons: Sequence[str], **where: str) -> Verdict:
    """A latency check against a baseline measured elsewhere: listed, never judged."""
    why = "; ".join(reasons) or "baseline from another machine"
    return Verdict(
        **where,
        check=check.text,
        outcome=NOT_COMPARABLE,
        reason=f"baseline from other hardware, latency not compared ({why})",
    )
