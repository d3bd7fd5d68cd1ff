"""The search of `rexbench tune`: successive halving (rexbench.tune.halving) over the candidates of
rexbench.tune.space, within a time budget (rexbench.tune.budget).

Each rung measures its candidates in groups through `profile_models`, as `rexbench profile` would:
each configuration in a worker process of its own (its threads and allocator set before it starts),
its output checked against eager fp32, timed in interleaved rounds with the drift anchor. A group
holds up to GROUP candidates that share an allocator (one worker policy per profile run) and have
distinct labels; the first group of a search holds one, to learn what a candidate costs. The
fidelity of each configuration is measured in its worker once it is timed (rexbench.tune.fidelity):
216 calls, which the screen spends only on configurations fast enough. Only the final rung writes
records, so report, gate and history read the finalists.

Before each group its cost is estimated from what was measured so far; a group that would take the
rung past its share of the budget is cut to what fits, and the rung ends where nothing more fits. The
screen gets what the budget has less the estimated cost of the rungs that would follow it (with
LATER_MARGIN) and of the deploy snippet's check, re-estimated before each group from the candidates
screened so far, and at least SCREEN_SHARE of the budget; every later rung an equal share of what
is left, the final rung what is left after the deploy snippet's check (`reserve_s`), with as many
runs as fit, at most `full_runs`. Ctrl-C leaves `results` as far as they got (rexbench.cli.tune
shows them).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rexbench.measure.backends import artifacts
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.run import forked
from rexbench.measure.run.faults import timed_out
from rexbench.measure.run.parts import REAL, Parts
from rexbench.measure.run.profile import ConfigFailure, profile_models
from rexbench.measure.run.rounds import ProfileEvent
from rexbench.measure.run.workers import Isolation
from rexbench.measure.timing.loop import EndRounds
from rexbench.models.photos import views
from rexbench.records.schema import Record
from rexbench.tune import halving
from rexbench.tune.budget import Budget, CostModel, Observed, rungs_s, set_up_again
from rexbench.tune.fidelity import HALF, FidelityProbe
from rexbench.tune.recommend import may_go_on
from rexbench.tune.results import BELOW, DROPPED, FAILED, FINALIST, STOPPED, TIMED, Result
from rexbench.tune.space import Candidate

GROUP = 4  # candidates measured together in one profile run (interleaved)
SCREEN_SHARE = 0.5  # of the budget, the screen's least when more rungs follow
LATER_MARGIN = 1.25  # the later rungs' estimated cost, this much more, is kept from the screen
TIMEOUT_FLOOR_S = 30  # a worker may always take this long, whatever is left of its rung
SLACK = 0.05  # of the budget: how far a group's estimate may pass its rung's share
SCREEN_FIDELITY = 0.02  # of the budget: the longest fidelity measurement taken in the screen


@dataclass(frozen=True)
class Request:
    """What to search: the model, the candidates in screening order, the budget in seconds, the
    objective ("latency" or "throughput"), --min-agreement, --weights (None: random weights),
    where the finalists' records go, their runs at most, and what profile measures with."""

    spec: str
    candidates: Sequence[Candidate]
    budget_s: float
    objective: str = "latency"
    min_agreement: float = 0.99
    weights: str | Path | None = None
    out_dir: Path | None = None
    full_runs: int = halving.FULL_RUNS
    parts: Parts = REAL


class Search:
    """One search: `results` by candidate key (in screening order), `rungs` as run, `records`
    the finalists' record files."""

    def __init__(
        self, request: Request, budget: Budget, progress: Callable[[str], None] | None = None
    ) -> None:
        from rexbench.models.packaged import has_trained_weights

        self.request, self.budget, self.progress = request, budget, progress
        self.trained = has_trained_weights(request.weights)
        self.results = {c.key: Result(c) for c in request.candidates}
        self.costs = CostModel()
        self.prepared: set[tuple[str, int]] = set()  # computations prepared (`_computation`)
        self.rungs: list[halving.Rung] = []
        self.records: list[Path] = []
        self._written: set[str] = set()
        self.reserve_s = 0.0  # kept for checking the deploy snippet (set before the final rung)
        self.reserve: Callable[[Candidate, Search], float] | None = None
        self.probe = FidelityProbe(request.weights, Path("."))

    def run(self, reserve: Callable[[Candidate, Search], float] | None = None) -> None:
        """Every rung that the budget allows. reserve(best finalist, search): seconds to keep for
        checking the winner's deploy snippet, asked before the final rung."""
        self.reserve = reserve
        # the graphs the engine backends build (exports, int8 quantizations), and the workers' fork
        # servers (one per threads and allocator), kept across the rungs' runs
        with (
            tempfile.TemporaryDirectory(prefix="rexbench-tune-") as folder,
            artifacts.kept(),
            forked.kept(),
        ):
            self.probe.folder = Path(folder)
            candidates = list(self.request.candidates)
            plan = halving.schedule(len(candidates), full_runs=self.request.full_runs)
            while plan:
                rung = plan[0]
                if rung.final:
                    self.reserve_s = self._reserve(candidates[0])
                    final = self._final(rung, candidates)
                    self._stopped(candidates[final.size if final else 0 :])
                    if final is None:
                        return
                    rung, candidates = final, candidates[: final.size]
                self.rungs.append(rung)
                screening = rung.index == 0 and len(plan) > 1
                allowance = self._allowance(rung, len(plan))
                measured = self._rung(rung, candidates, allowance, screening)
                candidates, plan = self._promoted(rung, measured)

    def _promoted(
        self, rung: halving.Rung, measured: list[Candidate]
    ) -> tuple[list[Candidate], list[halving.Rung]]:
        """The better part of the rung's eligible candidates, best first, and the rungs left."""
        ok = [c for c in measured if self._cost(c) is not None]
        plan = halving.next_rungs(len(ok), rung, full_runs=self.request.full_runs)
        if not plan:
            return [], []
        keep = halving.promote([(c.key, self._cost(c)) for c in ok], plan[0].size)
        for c in ok:
            if c.key not in keep:
                self.results[c.key].status = DROPPED
        by_key = {c.key: c for c in ok}
        return [by_key[k] for k in keep], plan  # type: ignore[index]

    def _stopped(self, candidates: Sequence[Candidate]) -> None:
        """Candidates that went on from their rung but that the budget left unmeasured."""
        for c in candidates:
            self.results[c.key].status = STOPPED

    def _cost(self, candidate: Candidate) -> float | None:
        """Its cost under the objective; None when it cannot go on (failed, invalid, unfaithful)."""
        result = self.results[candidate.key]
        if not may_go_on(result, self.request.min_agreement, self.trained):
            return None
        return result.cost(self.request.objective)

    def _allowance(self, rung: halving.Rung, rungs_left: int) -> float:
        """Seconds this rung may take: SCREEN_SHARE of the budget for a screen that others follow,
        an equal share of what is left for a later rung, all that is left (less the snippet's
        reserve) for the final one."""
        left = self.budget.left()
        if rung.final:
            return left - self.reserve_s
        if rung.index == 0 and rungs_left > 1:
            return self.budget.total_s * SCREEN_SHARE
        return left / rungs_left

    def _reserve(self, best: Candidate) -> float:
        """Seconds to keep for checking the deploy snippet of `best`."""
        return self.reserve(best, self) if self.reserve is not None else 0.0

    def _screen_room(
        self, screen: halving.Rung, screened: Sequence[Candidate], start: float
    ) -> float:
        """Seconds the screen (begun `start` seconds into the budget) may take if it ends with
        `screened`: the budget less the estimated cost of the rungs that would follow (LATER_MARGIN
        more), each holding the best of them so far, and less the deploy snippet's check."""
        measured = [c for c in screened if self.results[c.key].rung is not None]
        eligible = [c for c in measured if self._cost(c) is not None]
        waiting = [c for c in screened if self.results[c.key].rung is None]
        ranked = sorted(eligible, key=lambda c: self._cost(c) or 0.0) + waiting
        later = halving.next_rungs(len(ranked), screen, full_runs=self.request.full_runs)
        if not later:
            return self.budget.total_s - start
        items = [(c.key, self._kind(c, later=True)) for c in ranked]
        later_s = rungs_s(self.costs, items, [(r.size, r.runs + r.warmup) for r in later])
        later_s += self._fidelity_s(ranked[: later[0].size], later[0])
        snippet_s = self._reserve(ranked[0])
        return self.budget.total_s - start - snippet_s - LATER_MARGIN * later_s

    def _final(self, rung: halving.Rung, candidates: list[Candidate]) -> halving.Rung | None:
        """The final rung with as many runs as fit what is left (at most its own, at least the
        screen's), with fewer finalists when even that does not fit; None when none fits."""
        allowance = self.budget.left() - self.reserve_s + SLACK * self.budget.total_s
        for size in range(min(rung.size, len(candidates)), 0, -1):
            items = [(c.key, self._kind(c, later=True)) for c in candidates[:size]]
            setup = sum(self.costs.setup_s(kind) for _, kind in items)
            per_call = self.costs.timed_s(sum(self.costs.call_s(k, kind) for k, kind in items))
            setup += self._fidelity_s(candidates[:size], rung)
            fit = int((allowance - setup) / per_call) - halving.MAX_WARMUP
            runs = min(rung.runs, fit)
            if runs >= halving.SCREEN_RUNS:
                return replace(rung, size=size, runs=runs, warmup=halving.warmup_for(runs))
        return None

    def _affords(self, rung: halving.Rung, seconds: float) -> bool:
        """Whether a fidelity measurement of `seconds` is taken in this rung: always after the
        screen, in the screen when it takes at most SCREEN_FIDELITY of the budget."""
        return rung.index > 0 or rung.final or seconds <= SCREEN_FIDELITY * self.budget.total_s

    def _fidelity_s(self, group: Sequence[Candidate], rung: halving.Rung) -> float:
        """Seconds the group's fidelity measurements should take: its computations not measured
        yet (their calls over the evaluation photographs), and the eager reference the first time."""
        calls = len(views(HALF))
        new = {c.numerics: c for c in group if self.probe.of(c.config) is None}
        total = 0.0
        for c in new.values():
            seconds = -(-calls // c.config.batch_size) * self.costs.call_s(c.key, c.kind)
            total += seconds if self._affords(rung, seconds) else 0.0
        if total and not self.probe.has_reference:
            total += calls * self.costs.call_s(None, None)
        return total

    def _rung(
        self, rung: halving.Rung, candidates: list[Candidate], allowance: float, screening: bool
    ) -> list[Candidate]:
        """Measure the rung's candidates group by group while they fit `allowance` (the very
        first candidate of a search always is); the ones measured. `screening`: a screen that
        later rungs follow, whose allowance grows to what they leave (`_screen_room`)."""
        start = self.budget.elapsed()
        least = allowance
        done: list[Candidate] = []
        left = list(candidates)
        while left:
            group = groups(left)[0]
            if screening and done:
                allowance = max(least, self._screen_room(rung, done + group, start))
            spent = self.budget.elapsed() - start
            fits = self._fitting(group, rung, allowance - spent)
            if not fits and (done or len(self.rungs) > 1):
                self._stopped(left if self.rungs[-1].index > 0 else [])
                break
            group = fits or group[:1]
            if not self.costs.setups:  # the first group of a search: one candidate, to learn costs
                group = group[:1]
            self._say(rung, group, len(done), len(candidates))
            share = (allowance - spent + SLACK * self.budget.total_s) / len(group)
            deadline = start + allowance + SLACK * self.budget.total_s
            self._measure(rung, group, round(max(TIMEOUT_FLOOR_S, share)), deadline)
            done += group
            measured = {c.key for c in group}
            left = [c for c in left if c.key not in measured]
        return done

    def _fitting(
        self, group: list[Candidate], rung: halving.Rung, seconds: float
    ) -> list[Candidate]:
        """The longest head of `group` whose estimated cost fits `seconds` (with the slack)."""
        calls = rung.runs + rung.warmup
        for size in range(len(group), 0, -1):
            cost = self.costs.cost_s([(c.key, self._kind(c)) for c in group[:size]], calls)
            cost += self._fidelity_s(group[:size], rung)
            if cost <= seconds + SLACK * self.budget.total_s:
                return group[:size]
        return []

    def _measure(
        self, rung: halving.Rung, group: list[Candidate], timeout: int, deadline: float
    ) -> None:
        """One profile run of the group, each worker given `timeout` seconds of work (its share of
        what is left of the rung), its timed rounds ended at `deadline` (seconds into the budget)
        with the samples taken by then; each candidate's result and the cost model updated. Fidelity is
        measured for every candidate that survived the screen, and in the screen where its calls
        take at most SCREEN_FIDELITY of the budget."""
        r = self.request
        self.probe.afford = lambda seconds: self._affords(rung, seconds)
        configs = [replace(c.config, runs=rung.runs, warmup=rung.warmup) for c in group]
        kinds = [self._kind(c) for c in group]  # before this run prepares them
        failures: list[ConfigFailure] = []
        started, fidelity_s = self.budget.elapsed(), self.probe.spent_s
        records = profile_models(
            [r.spec],
            configs,
            weights=r.weights,
            on_failure=failures.append,
            progress=lambda event: self._watch(event, deadline),
            parts=r.parts,
            measure=self.probe.measure,
            isolation=Isolation(allocator=group[0].allocator, timeout=timeout),
        )
        wall = self.budget.elapsed() - started - (self.probe.spent_s - fidelity_s)
        by_id = {record.run.config_id: record for record in records}
        reasons = {f.config: f.line for f in failures}
        for c in group:
            record = by_id.get(c.config.config_id)
            self._take(c, rung, record, reasons)
            if self._timed_out(record, reasons.get(c.config.label), timeout):
                self.results[c.key].status = STOPPED
                self.results[
                    c.key
                ].reason = f"its worker ran past its share of the budget, {timeout} s"
            if rung.final and record is not None and r.out_dir is not None:
                self.results[c.key].record = self._write(record, r.out_dir)
        timed = max((rec.timing.wall_s for rec in records if rec.timing), default=0.0)
        observed = [self._observed(c, kind, rung) for c, kind in zip(group, kinds, strict=True)]
        self.costs.observe(observed, wall, timed)
        self.prepared.update(_computation(c) for c in group if c.config.config_id in by_id)

    def _watch(self, event: ProfileEvent, deadline: float) -> None:
        """Past the deadline, end the timed rounds once the current round is done (and say so)."""
        if event.phase == "timing" and event.done > 0 and self.budget.elapsed() > deadline:
            raise EndRounds

    def _write(self, record: Record, out_dir: Path) -> Path:
        """Store a finalist's record; finalists that share a configuration (their allocators
        differ) each keep theirs (`__2`), a record of an earlier search is replaced."""
        from rexbench.records.store import write_record

        path = write_record(record, out_dir, replace=record.run.config_id not in self._written)
        self._written.add(record.run.config_id)
        self.records.append(path)
        return path

    @staticmethod
    def _timed_out(record: Record | None, failure: str | None, timeout: int) -> bool:
        """Whether a candidate's worker was stopped at its timeout (its record says so, or the
        failure line when it left no record)."""
        if record is not None:
            return record.parity.get("fault") == "timeout"
        return failure is not None and failure.endswith(timed_out(timeout).reason)

    def _take(
        self, c: Candidate, rung: halving.Rung, record: Record | None, reasons: dict[str, str]
    ) -> None:
        """A candidate's outcome in this rung: its figures, fidelity and status."""
        result = self.results[c.key]
        result.fidelity = self.probe.of(c.config)
        if record is None:
            result.status, result.rung = FAILED, rung.index
            result.reason = reasons.get(c.config.label, "it was not measured")
            return
        result.measured(record, rung.index)
        if result.status != TIMED:
            return
        if result.runs < rung.runs:  # its rounds were ended by the budget
            result.reason = f"timed {result.runs} of {rung.runs} calls: the budget ended its rounds"
        if not may_go_on(result, self.request.min_agreement, self.trained):
            result.status = BELOW
        elif rung.final:
            result.status = FINALIST
        else:
            result.status = "screened" if rung.index == 0 else f"rung {rung.index}"

    def _observed(self, c: Candidate, kind: tuple, rung: halving.Rung) -> Observed:
        result = self.results[c.key]
        timed = result.rung == rung.index and result.median_s is not None
        call = result.median_s if timed else None
        return Observed(c.key, kind, rung.runs + rung.warmup, call, result.prepare_s)

    def _kind(self, c: Candidate, later: bool = False) -> tuple:
        """Its kind in the cost model, marked as set up again when this search has prepared its
        computation before (later: by the time a later rung comes, it will have) and its backend
        finds the costly step of that preparation cached (not PT2E's calibration)."""
        cheap = BACKENDS.get(c.config.runtime).prepared_again_cheaply
        again = later or _computation(c) in self.prepared
        return set_up_again(c.kind) if cheap and again else c.kind

    def _say(self, rung: halving.Rung, group: list[Candidate], done: int, total: int) -> None:
        if self.progress is not None:
            what = "final" if rung.final else "screen" if rung.index == 0 else f"rung {rung.index}"
            names = ", ".join(c.name for c in group)
            at = f"{self.budget.elapsed():4.0f} s"
            self.progress(
                f"[{at}] {what}, {rung.runs} runs: {done + 1}-{done + len(group)} of {total}: {names}"
            )


def _computation(c: Candidate) -> tuple[str, int]:
    """What a preparation builds, whatever the threads and allocator: the computation and the
    batch size (an engine's graph is built for one batch size)."""
    return c.numerics, c.config.batch_size


def groups(candidates: Sequence[Candidate]) -> list[list[Candidate]]:
    """Candidates in groups of at most GROUP that share an allocator and have distinct labels, in
    the order of their first member (each joins the first group it fits)."""
    out: list[list[Candidate]] = []
    for c in candidates:
        home = next(
            (
                g
                for g in out
                if len(g) < GROUP
                and g[0].allocator == c.allocator
                and all(o.config.label != c.config.label for o in g)
            ),
            None,
        )
        if home is None:
            out.append([c])
        else:
            home.append(c)
    return out
