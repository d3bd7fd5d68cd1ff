"""Gate one model: its current records and counts against its baseline records and counts.json entry.

The rules live in `rexbench.gate.checks`; this module pairs records (same spec and config_id, this
machine first), decides what is comparable (same hardware -> latency; same anchor -> normalised),
and reports a `py:` model's source change. Measuring and counting now happen in `rexbench.gate.run`.
No Typer or Rich.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.gate import checks as gate
from rexbench.gate.baseline import flat_counts, match_baseline
from rexbench.gate.contended import contention_guard

if TYPE_CHECKING:
    from rexbench.records.schema import Record


#: A run counts as measured on a busy machine when the 1-min load average at its end exceeds this
#: many runnable threads per usable core (see `busy`; chosen by benchmarks/gate_calibration.py).
MAX_LOAD_PER_CORE = 2.0


@dataclass(frozen=True)
class GateOptions:
    """How to judge: checks, significance level, bootstrap size, source policy."""

    checks: tuple[gate.Check, ...]
    alpha: float = gate.ALPHA
    n_boot: int = gate.N_BOOT
    require_same_source: bool = False
    max_load_per_core: float = MAX_LOAD_PER_CORE

    @property
    def count_checks(self) -> list[gate.Check]:
        return [c for c in self.checks if c.kind == "count"]

    @property
    def latency_checks(self) -> list[gate.Check]:
        return [c for c in self.checks if c.kind in ("latency", "throughput")]

    @property
    def instruction_checks(self) -> list[gate.Check]:
        return [c for c in self.checks if c.kind == "instructions"]


# ----------------------------------------------------------------------------------- counts


def count_verdicts(
    checks: Sequence[gate.Check],
    model: str,
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
) -> list[gate.Verdict]:
    """Every count check on flat counts (see `baseline.flat_counts`). A MAC check is applied at
    every input both sides have (`macs_conv@224:=`, `macs_conv@300:=`)."""
    base, cur = flat_counts(baseline), flat_counts(current)
    out = []
    for check in checks:
        if check.metric in base or check.metric in cur or check.metric.startswith("params"):
            out.append(
                gate.compare_count(
                    check,
                    base.get(check.metric),
                    cur.get(check.metric),
                    model=model,
                    config="counts",
                )
            )
            continue
        b_inputs = {k.partition("@")[2] for k in base if k.startswith(check.metric + "@")}
        c_inputs = {k.partition("@")[2] for k in cur if k.startswith(check.metric + "@")}
        common = sorted(b_inputs & c_inputs, key=_input_order)
        for key in common:
            name = f"{check.metric}@{key}"
            at = replace(check, metric=name, text=check.text.replace(check.metric, name, 1))
            out.append(gate.compare_count(at, base[name], cur[name], model=model, config="counts"))
        if not common:
            if b_inputs and c_inputs:
                why = f"baseline has {check.metric} at {_inputs(b_inputs)}, current at {_inputs(c_inputs)}"
            else:
                why = f"no {check.metric} in the {'baseline' if not b_inputs else 'current run'}"
            out.append(gate.Verdict(model, "counts", check.text, gate.NOT_COMPARABLE, why))
    return out


def _input_order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (10**9, key)


def _inputs(keys: set[str]) -> str:
    return ", ".join(sorted(keys, key=_input_order))


# ---------------------------------------------------------------------------------- latency


def samples_of(record: Record, anchored: bool = True) -> gate.Samples:
    """The gate's view of a record's timing: model samples, anchor samples, batch size."""
    timing = record.timing
    if timing is None or not timing.samples_ns:
        raise RexbenchError(f"{record.model.spec} ({record.run.label}) has no timing samples")
    anchor = list(getattr(timing, "anchor_ns", []) or []) if anchored else None
    return gate.Samples(
        timing.samples_ns, anchor or None, int(record.run.config.get("batch_size", 1))
    )


def anchor_mismatch(base: Record, cur: Record) -> str | None:
    """Why the anchor ratio cannot be used for this pair, or None when it can."""
    for side, record in (("baseline", base), ("current run", cur)):
        if not getattr(record.timing, "anchor_ns", None):
            return f"no drift-anchor samples in the {side}"
    a, b = (getattr(r.timing, "anchor", {}) or {} for r in (base, cur))
    keys = ("name", "version", "device", "threads", "batch_size")
    diff = [f"{k} {a.get(k)} vs {b.get(k)}" for k in keys if a.get(k) != b.get(k)]
    return f"different drift anchors ({', '.join(diff)})" if diff else None


def latency_verdicts(
    checks: Sequence[gate.Check], base: Record, cur: Record, options: GateOptions
) -> tuple[list[gate.Verdict], list[str]]:
    """Latency / throughput checks of one record pair (same spec and config) and notes."""
    from rexbench.measure.machine.env import differences

    where = {"model": cur.model.spec, "config": cur.run.label}
    diffs = differences(base.env, cur.env)
    if base.machine_id != cur.machine_id:
        return [gate.not_comparable(c, diffs, **where) for c in checks], []
    notes = []
    if diffs:
        notes.append(
            f"{cur.model.spec} ({cur.run.label}): environment changed since the baseline: {'; '.join(diffs)}"
        )
    why = anchor_mismatch(base, cur)
    if why:
        notes.append(
            f"{cur.model.spec} ({cur.run.label}): {why}: raw times compared, machine drift not cancelled"
        )
    b, c = samples_of(base, why is None), samples_of(cur, why is None)
    busy_base, busy_cur = (
        busy(base, options.max_load_per_core),
        busy(cur, options.max_load_per_core),
    )
    verdicts = []
    for check in checks:
        v = gate.compare_latency(check, b, c, alpha=options.alpha, n_boot=options.n_boot, **where)
        v.details.update(
            baseline_created=base.created,
            environment_differences=diffs,
            load=[_load(base), _load(cur)],
        )
        guarded = load_guard(v.outcome, busy_base, busy_cur)
        if guarded != v.outcome and v.outcome == gate.REGRESSION:
            v.reason += f"; but the machine was busy during this run ({busy_cur}): re-run it on a quiet machine"
        elif guarded != v.outcome:
            v.reason += (
                f"; but the baseline was measured on a busy machine ({busy_base}): save it again"
            )
        v.outcome = guarded
        slowdown_guard(v, base, cur)
        verdicts.append(contention_guard(v, base, cur))
    return verdicts, notes


def slowdown_guard(verdict: gate.Verdict, base: Record, cur: Record) -> None:
    """A GPU run whose clocks were lowered by power or temperature (rexbench.measure.checks.validity) proves
    nothing either way: a pass or a regression with such a run on either side becomes inconclusive."""
    from rexbench.measure.checks.validity import slowdown_of

    why = [(side, slowdown_of(r)) for side, r in (("baseline", base), ("current run", cur))]
    why = [(side, reason) for side, reason in why if reason]
    if not why or verdict.outcome not in (gate.PASS, gate.REGRESSION):
        return
    verdict.details["gpu_slowdown"] = {side: reason for side, reason in why}
    text = "; ".join(f"the {side}: {reason}" for side, reason in why)
    verdict.reason += (
        f"; but the GPU clocks were lowered by power or temperature during {text}: "
        "re-run on a cool GPU at its normal power limit"
    )
    verdict.outcome = gate.INCONCLUSIVE


def load_guard(outcome: str, busy_base: str | None, busy_cur: str | None) -> str:
    """Load only makes a run slower: a regression measured on a busy machine, or a pass against a
    baseline measured on one, becomes inconclusive."""
    if (outcome == gate.REGRESSION and busy_cur) or (outcome == gate.PASS and busy_base):
        return gate.INCONCLUSIVE
    return outcome


def _load(record: Record) -> float | None:
    """The 1-min load average at the end of the record's measurement (None if not recorded)."""
    end = getattr(record.timing, "device_end", None) or {}
    load = end.get("loadavg")
    return float(load[0]) if load else None


def busy(record: Record, max_per_core: float = MAX_LOAD_PER_CORE) -> str | None:
    """Why a CPU run counts as measured on a busy machine, or None.

    Busy: the 1-min load average at the end of the run exceeds `max_per_core` x the usable cores,
    i.e. other processes competed hard for the cores (our own run's threads alone load them up to
    about the core count). Load only makes a run slower, so the gate does not call a regression
    measured on a busy machine, nor a pass against a baseline measured on one. Where the load
    average is host-wide (some containers), raise the limit ([tool.rexbench.gate]
    max-load-per-core = inf switches this off). Only for records without contention counters
    (rexbench.gate.contended): the 1-minute average lags a neighbour that started or ended seconds ago.
    """
    from rexbench.gate.contended import measured

    if measured(record):  # the kernel's counters say what the load average can only guess
        return None
    load = _load(record)
    cores = (record.env.get("cpu") or {}).get("usable_cores")
    if load is None or not cores or str(record.run.config.get("device", "cpu")).startswith("cuda"):
        return None
    if load > max_per_core * cores:
        return f"1-min load average {load:.2f} on {cores} usable cores"
    return None


# ----------------------------------------------------------------------------------- source


def source_change(
    spec: str, baseline_hash: str | None, current_hash: str | None, refuse: bool
) -> str | None:
    """A note when a `py:` model's source file changed since the baseline; with `refuse`, an error."""
    if not baseline_hash or not current_hash or baseline_hash == current_hash:
        return None
    change = f"{spec}: source changed since the baseline (sha256 {baseline_hash[:12]} -> {current_hash[:12]})"
    if refuse:
        raise RexbenchError(
            f"{change}; refusing to compare (--require-same-source): save a new baseline"
        )
    return change + "; compared anyway"


def _source_hashes(
    spec: str,
    baselines: Sequence[Record],
    counts: Mapping[str, Any] | None,
    current: Sequence[Record],
) -> tuple[str | None, str | None]:
    base = (counts or {}).get("source_sha256")
    for record in baselines:
        base = base or record.model.provenance.get("sha256")
    cur = next(
        (r.model.provenance.get("sha256") for r in current if r.model.provenance.get("sha256")),
        None,
    )
    if cur is None and spec.startswith("py:"):
        from rexbench.models.provenance import source_hash
        from rexbench.spec import parse

        cur = source_hash(parse(spec))
    return base, cur


def refuse_changed_source(
    spec: str, baselines: Sequence[Record], counts_baseline: Mapping[str, Any] | None
) -> None:
    """--require-same-source, checked before anything is measured: a RexbenchError when the `py:`
    source file of `spec` changed since its baseline (records or counts.json entry)."""
    known = [b for b in baselines if b.model.spec == spec]
    base_hash, cur_hash = _source_hashes(spec, known, counts_baseline, ())
    source_change(spec, base_hash, cur_hash, refuse=True)


def _with_source(verdicts: list[gate.Verdict], change: dict[str, str] | None) -> list[gate.Verdict]:
    """Every verdict of a model whose source changed carries both hashes in its details."""
    if change:
        for verdict in verdicts:
            verdict.details["source_changed"] = change
    return verdicts


def invalid_verdicts(
    checks: Sequence[gate.Check], current: Record, base: Record | None
) -> list[gate.Verdict]:
    """Not judged: a record whose output differed from the eager fp32 model's (its own parity
    check, rexbench.measure.checks.parity), now or in the baseline; [] when both are valid."""
    sides = (("now", current), ("baseline", base))
    invalid = [f"{side}: {r.parity_text}" for side, r in sides if r is not None and not r.valid]
    if not invalid:
        return []
    why = f"output differs from the eager fp32 model's, not judged ({'; '.join(invalid)})"
    label = current.run.label
    return [
        gate.Verdict(current.model.spec, label, c.text, gate.NOT_COMPARABLE, why) for c in checks
    ]


# ------------------------------------------------------------------------------------ model


def evaluate_model(
    spec: str,
    options: GateOptions,
    *,
    current: Sequence[Record] = (),
    baselines: Sequence[Record] = (),
    counts_baseline: Mapping[str, Any] | None = None,
    counts_now: Mapping[str, Any] | None = None,
    other_machines: Sequence[str] = (),
    counts_only: bool = False,
) -> tuple[list[gate.Verdict], list[str]]:
    """All verdicts and notes of one model.

    current: records measured now (or given with --from); baselines: every reference record
    (all machines); counts_baseline: its counts.json entry; counts_now: counted now (else the
    current records' counts). other_machines: differences to show when only other hardware has a
    latency baseline, so nothing was measured.
    """
    notes: list[str] = []
    matched = [match_baseline(record, baselines) for record in current]
    used = [b for b, _ in matched if b is not None]
    base_hash, cur_hash = _source_hashes(
        spec, used or [b for b in baselines if b.model.spec == spec], counts_baseline, current
    )
    note = source_change(spec, base_hash, cur_hash, options.require_same_source)
    change = None
    if note:
        notes.append(note)
        change = {"baseline_sha256": str(base_hash), "current_sha256": str(cur_hash)}

    base_counts: dict[str, Any] = {}
    for record in used or [b for b in baselines if b.model.spec == spec][:1]:
        base_counts.update(flat_counts(record.counts))
    base_counts.update(flat_counts(counts_baseline or {}))
    cur_counts: dict[str, Any] = {}
    for record in current:
        cur_counts.update(flat_counts(record.counts))
    cur_counts.update(flat_counts(counts_now or {}))
    verdicts = count_verdicts(options.count_checks, spec, base_counts, cur_counts)
    if counts_only or not options.latency_checks:
        return _with_source(verdicts, change), notes

    if not current:
        for check in options.latency_checks:
            if other_machines:
                verdicts.append(gate.not_comparable(check, other_machines, model=spec, config="-"))
            else:
                verdicts.append(
                    gate.Verdict(
                        spec,
                        "-",
                        check.text,
                        gate.NOT_COMPARABLE,
                        "no latency baseline of this model for this machine; save one with `rexbench baseline save`",
                    )
                )
    for record, (base, _same) in zip(current, matched, strict=True):
        invalid = invalid_verdicts(options.latency_checks, record, base)
        if invalid:
            verdicts += invalid
            continue
        if base is None:
            for check in options.latency_checks:
                verdicts.append(
                    gate.Verdict(
                        spec,
                        record.run.label,
                        check.text,
                        gate.NOT_COMPARABLE,
                        f"no baseline record for configuration {record.run.label} ({record.run.config_id}); "
                        "save one with `rexbench baseline save`",
                    )
                )
            continue
        more, why = latency_verdicts(options.latency_checks, base, record, options)
        verdicts += more
        notes += why
    return _with_source(verdicts, change), notes
