"""The time budget of a search (`--budget 10m`) and what a candidate is expected to cost in it.

A candidate's cost in a rung is its setup (its worker process started, the model built, prepared
and checked, its fidelity measured the first time) plus its timed calls, warm-up included. Both are
learned from what was measured so far: setup from each group's wall time less its timed part (each
candidate's own preparation time, `compile_s`, plus an equal share of the rest), the time of a call
from the candidate's last median, else from others of its kind or family (the same preparation in
another dtype), else from every median so far; an unknown preparation's setup is taken as the
longest seen. Setups are learned apart for a computation prepared for the first time in a search
and one prepared again (its kind marked AGAIN): the second finds its exported and quantized graphs
in the search's cache (rexbench.measure.backends.artifacts) and its compiled kernels in
torch.compile's. Before anything is measured, the guesses below stand in.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from rexbench.errors import RexbenchError

SETUP_GUESS_S = 20.0  # before any candidate was set up: a compiled CNN's preparation on 2 cores
CALL_GUESS_S = 0.05  # before any call was timed
TIMED_OVERHEAD_GUESS = (
    1.5  # wall time of interleaved rounds / the candidates' calls (the anchor...)
)
AGAIN = "again"  # the last element of a kind set up before in the same search
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}
_BUDGET_RE = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")


def parse_budget(text: str) -> float:
    """`--budget` in seconds: "10m", "90s", "1h", "1m30s", "600" (seconds)."""
    cleaned = str(text).strip().lower().replace(" ", "")
    parts = _BUDGET_RE.findall(cleaned)
    joined = "".join(number + unit for number, unit in parts)
    units = [unit for _, unit in parts]
    if not parts or joined != cleaned or len(set(units)) != len(units) or "" in units[:-1]:
        raise RexbenchError(f"--budget {text!r}: give a duration such as 10m, 90s, 1h or 1m30s")
    seconds = sum(float(number) * _UNIT_S[unit] for number, unit in parts)
    if seconds <= 0:
        raise RexbenchError(f"--budget {text!r}: give a duration above zero, such as 10m")
    return seconds


@dataclass
class Budget:
    """`total_s` seconds from when it was made; `clock` returns seconds (monotonic)."""

    total_s: float
    clock: Callable[[], float] = time.monotonic
    start: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.start < 0:
            self.start = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        return self.total_s - self.elapsed()


@dataclass
class CostModel:
    """What candidates cost, learned group by group (`observe`). Keys identify candidates, kinds
    group candidates that prepare alike: (configuration label, dtype) pairs, whose first element
    is their family (rexbench.tune.space.Candidate.kind)."""

    setups: dict[Hashable, list[float]] = field(default_factory=dict)
    calls: dict[Hashable, float] = field(default_factory=dict)
    kind_calls: dict[Hashable, list[float]] = field(default_factory=dict)
    overheads: list[float] = field(default_factory=list)

    def observe(self, group: Sequence[Observed], wall_s: float, timed_s: float) -> None:
        """A group measured together: its wall time in all, the wall time of its timed rounds."""
        measured = [o for o in group if o.call_s is not None]
        calls = sum((o.calls * o.call_s) for o in measured if o.call_s is not None)
        if measured and calls > 0 and timed_s > 0:
            self.overheads.append(timed_s / calls)
        rest = max(0.0, wall_s - timed_s - sum(o.prepare_s or 0.0 for o in group))
        for o in group:
            self.setups.setdefault(o.kind, []).append((o.prepare_s or 0.0) + rest / len(group))
            if o.call_s is not None:
                self.calls[o.key] = o.call_s
                self.kind_calls.setdefault(first_time(o.kind), []).append(o.call_s)

    def setup_s(self, kind: Hashable) -> float:
        """A new worker's setup for a candidate of this kind: as measured for the kind, else for
        its family (the kinds that share its first element, when kinds are tuples) set up as
        often, else (set up again) for every kind set up again, else for its family, else the
        longest setup seen (an unknown preparation may be a compilation)."""
        if kind in self.setups:
            return statistics.median(self.setups[kind])
        tiers = (
            lambda k: _related(k, kind) and again(k) == again(kind),
            lambda k: again(k) and again(kind),
            lambda k: _related(k, kind),
        )
        for alike in tiers:
            seen = [s for k, setups in self.setups.items() if alike(k) for s in setups]
            if seen:
                return statistics.median(seen)
        every = [s for seen in self.setups.values() for s in seen]
        return max(every) if every else SETUP_GUESS_S

    def call_s(self, key: Hashable, kind: Hashable) -> float:
        """One timed call of this candidate (None, None: of any candidate)."""
        kind = first_time(kind)
        if key in self.calls:
            return self.calls[key]
        if kind in self.kind_calls:
            return statistics.median(self.kind_calls[kind])
        family = [c for k, seen in self.kind_calls.items() if _related(k, kind) for c in seen]
        if family:
            return statistics.median(family)
        every = list(self.calls.values())
        return statistics.median(every) if every else CALL_GUESS_S

    def timed_s(self, calls: float) -> float:
        """Wall time of interleaved rounds holding `calls` seconds of the candidates' calls."""
        factor = statistics.median(self.overheads) if self.overheads else TIMED_OVERHEAD_GUESS
        return calls * factor

    def cost_s(self, items: Sequence[tuple[Hashable, Hashable]], calls: int) -> float:
        """A group of (key, kind) candidates, each set up and timed `calls` times (warm-up included)."""
        setup = sum(self.setup_s(kind) for _, kind in items)
        return setup + self.timed_s(sum(calls * self.call_s(key, kind) for key, kind in items))


def rungs_s(
    costs: CostModel, ranked: Sequence[tuple[Hashable, Hashable]], rungs: Sequence[tuple[int, int]]
) -> float:
    """Estimated seconds of `rungs`, (size, calls with warm-up) pairs, each holding the best `size`
    of the `ranked` (key, kind) candidates (best first), each set up afresh in every rung."""
    return sum(costs.cost_s(ranked[:size], calls) for size, calls in rungs)


def set_up_again(kind: tuple) -> tuple:
    """The kind of a candidate whose computation this search has prepared before: its graphs
    are cached (rexbench.measure.backends.artifacts) or its compilation is (torch.compile's)."""
    return (*kind, AGAIN)


def again(kind: Hashable) -> bool:
    return isinstance(kind, tuple) and kind[-1:] == (AGAIN,)


def first_time(kind: Hashable) -> Hashable:
    """The kind without its AGAIN mark (what a call's time depends on)."""
    return kind[:-1] if again(kind) else kind  # type: ignore[index]


def _related(a: Hashable, b: Hashable) -> bool:
    """Two kinds of one family: tuples that share their first element."""
    return isinstance(a, tuple) and isinstance(b, tuple) and a[:1] == b[:1]


@dataclass(frozen=True)
class Observed:
    """One candidate of a measured group: its key and kind, its timed calls (warm-up included), the
    time of one call (None: it failed), its own preparation time (compile_s)."""

    key: Hashable
    kind: Hashable
    calls: int
    call_s: float | None
    prepare_s: float | None
