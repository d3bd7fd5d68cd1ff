"""Successive halving (Jamieson and Talwalkar, "Non-stochastic best arm identification and
hyperparameter optimization", AISTATS 2016; Karnin et al., ICML 2013): every candidate is measured
briefly, the better half of them twice as long, and so on, until few are left; those finalists are
measured in full. Pure functions: the schedule of rungs, and who goes on from one rung to the next.

The budget decides how much of the schedule is run (rexbench.tune.budget); this module only says
what the rungs are.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace

SCREEN_RUNS = 20  # timed calls of the first rung: a median within a few percent on a quiet machine
FULL_RUNS = 1000  # the finalists': `rexbench profile`'s default number of runs
FINALISTS = 2
MAX_WARMUP = 20  # `rexbench profile`'s default warm-up


@dataclass(frozen=True)
class Rung:
    """One round of the search: `size` candidates, each timed `runs` times after `warmup` calls;
    `final`: the finalists, measured in full (their records are kept)."""

    index: int
    size: int
    runs: int
    warmup: int
    final: bool = False


def warmup_for(runs: int) -> int:
    """A quarter of the timed calls, at least 2 and at most MAX_WARMUP."""
    return max(2, min(MAX_WARMUP, runs // 4))


def schedule(
    candidates: int,
    *,
    screen_runs: int = SCREEN_RUNS,
    full_runs: int = FULL_RUNS,
    finalists: int = FINALISTS,
) -> list[Rung]:
    """The rungs for `candidates` candidates: while more than `finalists` are left, a rung of all of
    them, the next one with half of them (rounded up) and twice the runs (at most `full_runs`); then
    the finalists with `full_runs`. schedule(10): 10 x 20 runs, 5 x 40, 3 x 80, 2 x 1000."""
    if candidates < 1:
        return []
    rungs: list[Rung] = []
    size, runs = candidates, min(screen_runs, full_runs)
    while size > finalists:
        rungs.append(Rung(len(rungs), size, runs, warmup_for(runs)))
        size, runs = math.ceil(size / 2), min(2 * runs, full_runs)
    rungs.append(Rung(len(rungs), size, full_runs, warmup_for(full_runs), final=True))
    return rungs


def promote(measured: Sequence[tuple[Hashable, float | None]], keep: int) -> list[Hashable]:
    """The `keep` best of (key, cost) pairs, lowest cost first; a cost of None (failed, invalid,
    not eligible) never goes on; equal costs keep their given order."""
    ranked = sorted(
        ((cost, i, key) for i, (key, cost) in enumerate(measured) if cost is not None),
        key=lambda item: (item[0], item[1]),
    )
    return [key for _, _, key in ranked[: max(0, keep)]]


def next_rungs(
    measured: int,
    last: Rung,
    *,
    full_runs: int = FULL_RUNS,
    finalists: int = FINALISTS,
) -> list[Rung]:
    """The rungs left after `last`, re-planned for the `measured` candidates that came through it
    eligible (a budget or failures can leave fewer than planned): all of them in the final rung
    when `finalists` or fewer, else half of them with twice the runs, and so on."""
    if measured < 1 or last.final:
        return []
    if measured <= finalists:
        return [Rung(last.index + 1, measured, full_runs, warmup_for(full_runs), final=True)]
    rest = schedule(measured, screen_runs=last.runs, full_runs=full_runs, finalists=finalists)[1:]
    return [replace(r, index=last.index + 1 + i) for i, r in enumerate(rest)]
