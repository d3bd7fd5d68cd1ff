"""The gate on a contended machine: never judge a contended measurement, re-measure instead.

A run is contended when the kernel says other processes took the cores during it
(`rexbench.measure.machine.contention`: our threads' run-queue wait and CPU pressure as far as other
processes ran, steal, chunk by chunk; our own threads waiting for each other are not contention).
Contention only makes a run slower, and not uniformly: a 2-thread model waits out a neighbour's
time slices at every barrier, and the drift anchor is hit differently, so it cannot cancel it (with
two busy loops beside it, an unchanged model read as +90% at the 10th percentile).

So the gate
1. measures with `abort_when_contended`: a run is stopped as soon as it is certain to end contended;
2. when it was contended, waits up to SETTLE_S for a quiet second (`wait_for_quiet`) and measures
   again, at most `attempts` times in all (`measure_until_clean`), every attempt listed in the report;
3. when no attempt was clean, reports *inconclusive: machine contended (...)* for every latency check
   of the model (counts are still checked), and never a regression or a pass;
4. a verdict against a baseline that was itself measured under contention is inconclusive too
   (`baseline save` refuses such a baseline unless forced);
5. a verdict between runs whose virtual CPUs the hypervisor had placed differently (one core
   complex or two: rexbench.measure.machine.placement) is inconclusive: the anchor, at the model's thread
   count, cancels most of that (rexbench.measure.timing.anchor), but not for every model alike.

Records without contention data (older rexbench, or a system without the counters) fall back to
the 1-minute load average guard of rexbench.gate.evaluate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rexbench.gate import checks as gate
from rexbench.measure.machine import contention, placement
from rexbench.measure.machine.placement import signature

if TYPE_CHECKING:
    from rexbench.records.schema import Record

MAX_ATTEMPTS = 3
SETTLE_S = 5.0  # at most this long between attempts, waiting for a quiet second
WINDOW_S = 1.0


def contended(record: Record) -> str | None:
    """Why a record counts as measured under contention, or None (clean, or not measured)."""
    summary = contention.summarize(record.timing.contention if record.timing else None)
    return contention.describe(summary) if summary.get("contended") else None


def measured(record: Record) -> bool:
    """Whether the record carries readable contention counters (then they, not the load, decide)."""
    return bool(
        contention.summarize(record.timing.contention if record.timing else None)["measured"]
    )


def contention_guard(verdict: gate.Verdict, base: Record, cur: Record) -> gate.Verdict:
    """A pass or regression judged on a contended run (or against a contended baseline) becomes
    inconclusive, with the contention in the reason."""
    if verdict.outcome not in (gate.PASS, gate.REGRESSION):
        return verdict
    now, then = contended(cur), contended(base)
    moved = placement.mismatch(_placement(base), _placement(cur))
    if moved:
        verdict.details["placement"] = [signature(_placement(r)) for r in (base, cur)]
        verdict.reason = (
            f"{moved}: a multi-threaded model's speed differs by 20-30% between placements, not "
            f"exactly as the anchor's; {verdict.outcome} not trusted; re-run later; {verdict.reason}"
        )
    elif now:
        verdict.reason = (
            f"machine contended ({now}): {verdict.outcome} not trusted; {verdict.reason}"
        )
    elif then:
        verdict.reason = (
            f"baseline measured under contention ({then}): save it again on a quiet machine; "
            f"{verdict.reason}"
        )
    else:
        return verdict
    verdict.outcome = gate.INCONCLUSIVE
    return verdict


def _placement(record: Record) -> dict[str, Any] | None:
    return ((record.timing.contention if record.timing else None) or {}).get("placement")


def wait_for_quiet(
    limit_s: float = SETTLE_S,
    reader: Callable[[], dict[str, int | None]] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Sleep in WINDOW_S windows until one is quiet (CPU pressure and steal below their chunk
    limits) or `limit_s` has passed; return the seconds waited. Without PSI nor steal: no wait."""
    read = reader or contention.read_counters
    waited = 0.0
    before = read()
    if before.get("psi_some_us") is None and before.get("steal_ticks") is None:
        return 0.0
    while waited < limit_s:
        sleep(WINDOW_S)
        after = read()
        waited += WINDOW_S
        chunk = contention.Chunk(
            -1,
            "idle",
            0,
            int(WINDOW_S * 1e9),
            psi_some_us=_delta(before, after, "psi_some_us"),
            steal_ticks=_delta(before, after, "steal_ticks"),
            total_ticks=_delta(before, after, "total_ticks"),
        )
        if not chunk.contended:
            break
        before = after
    return waited


def _delta(a: dict[str, int | None], b: dict[str, int | None], key: str) -> int | None:
    x, y = a.get(key), b.get(key)
    return None if x is None or y is None else max(0, y - x)


@dataclass
class Attempts:
    """What `measure_until_clean` did: one entry per attempt, and why it gave up (or None)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    gave_up: str | None = None

    def notes(self, spec: str) -> list[str]:
        """One line for the report when more than one attempt was needed (or none was clean)."""
        if len(self.entries) < 2 and not self.gave_up:
            return []
        parts = []
        for e in self.entries:
            state = "contended" if e["contended"] else "clean"
            wait = f" after waiting {e['waited_s']:.0f} s" if e.get("waited_s") else ""
            parts.append(
                f"attempt {e['attempt']}{wait}: {state} ({e['contention']}, {e['seconds']:.0f} s)"
            )
        end = f"; gave up: {self.gave_up}" if self.gave_up else ""
        return [f"{spec}: re-measured on a contended machine: {'; '.join(parts)}{end}"]

    def to_list(self) -> list[dict[str, Any]]:
        return [dict(e) for e in self.entries]


def measure_until_clean(
    measure: Callable[[], list[Record]],
    attempts: int = MAX_ATTEMPTS,
    settle: Callable[[], float] | None = None,
) -> tuple[list[Record], Attempts]:
    """Call `measure` (which raises `ContendedRun` when it stops a contended run early) until it
    returns records that are not contended, at most `attempts` times. Returns the clean records
    and the attempts; when every attempt was contended: the last records (none when the last one
    was stopped early) and `Attempts.gave_up` set. settle: before each re-measure (default
    `wait_for_quiet`)."""
    log = Attempts()
    records: list[Record] = []
    for number in range(1, max(1, attempts) + 1):
        waited = (settle or wait_for_quiet)() if number > 1 else 0.0
        start = time.perf_counter()
        try:
            records = measure()
            why = next((w for w in map(contended, records) if w), None)
        except contention.ContendedRun as stop:
            records, why = [], contention.describe(stop.summary)
        entry = {"attempt": number, "waited_s": waited, "seconds": time.perf_counter() - start}
        entry.update(contended=why is not None, contention=why or "clean")
        log.entries.append(entry)
        if why is None:
            return records, log
    log.gave_up = f"machine contended in all {len(log.entries)} attempts"
    return records, log


def contended_verdicts(
    spec: str, labels: list[str], checks: list[gate.Check], attempts: Attempts
) -> list[gate.Verdict]:
    """Inconclusive latency verdicts for a model no attempt could measure cleanly."""
    last = attempts.entries[-1]["contention"] if attempts.entries else "no attempt"
    reason = (
        f"inconclusive: machine contended ({last}; {len(attempts.entries)} attempt(s)): "
        "re-run the gate on a quiet machine"
    )
    out = []
    for label in labels:
        for check in checks:
            v = gate.Verdict(spec, label, check.text, gate.INCONCLUSIVE, reason)
            v.details["attempts"] = attempts.to_list()
            out.append(v)
    return out
