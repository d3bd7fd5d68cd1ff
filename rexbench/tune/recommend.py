"""Which candidate to run: the fastest (by the objective) whose output passed the check against
eager fp32 and, with trained weights, whose top-1 agreement with eager fp32 on the evaluation
photographs is at least `--min-agreement`; among those measured in the last rung reached (the
finalists when the search got that far), whose figures come from the most runs. With random weights
top-1 agreement means little (rexbench.measure.checks.fidelity): the output check alone judges.
"""

from __future__ import annotations

from collections.abc import Sequence

from rexbench.tune.pareto import Point, pareto_front
from rexbench.tune.results import Result

DEFAULT_MIN_AGREEMENT = 0.99


def eligible(result: Result, min_agreement: float, trained: bool) -> bool:
    """Timed, its output valid and, with trained weights, agreeing enough with eager fp32."""
    if result.median_s is None or result.valid is not True:
        return False
    if not trained:
        return True
    agreement = result.agreement
    return agreement is not None and agreement >= min_agreement


def may_go_on(result: Result, min_agreement: float, trained: bool) -> bool:
    """Whether a timed candidate goes on to the next rung: its output valid and, with trained
    weights, its top-1 agreement not measured yet (the next rung measures it) or high enough."""
    if result.median_s is None or result.valid is not True:
        return False
    agreement = result.agreement
    return not trained or agreement is None or agreement >= min_agreement


def recommend(
    results: Sequence[Result], objective: str, min_agreement: float, trained: bool
) -> Result | None:
    """The recommendation, or None when no candidate qualifies."""
    ok = [r for r in results if eligible(r, min_agreement, trained) and r.rung is not None]
    if not ok:
        return None
    last = max(r.rung for r in ok if r.rung is not None)
    finalists = [r for r in ok if r.rung == last]
    return min(finalists, key=lambda r: r.cost(objective) or float("inf"))


def front(results: Sequence[Result], objective: str) -> list[Point]:
    """The Pareto front of cost (ms per call, or per image for throughput) against top-1
    agreement, over every timed candidate with a valid output and a measured fidelity."""
    points = [
        Point(r.name, 1e3 * cost, r.agreement)
        for r in results
        if r.valid and r.agreement is not None and (cost := r.cost(objective)) is not None
    ]
    return pareto_front(points)
