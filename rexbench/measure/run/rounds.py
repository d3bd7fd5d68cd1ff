"""One model's measuring rounds: its prepared configurations and the drift anchor timed in small
interleaved rounds (rexbench.measure.timing.loop), then one Record per configuration, with its summary
and warnings, written as soon as the rounds end.

Each runner's backend settings (threads, cuDNN, TF32) are re-applied before each of its chunks,
outside the timed region; the device state is read before and after the rounds, and on a GPU
once per round as well (rexbench.measure.checks.validity, with torch.compile's recompilations); the
kernel's contention counters are read around every chunk (rexbench.measure.machine.contention), and the
allocator is made steady before the warm-up (rexbench.measure.machine.allocator).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError, first_line
from rexbench.measure.checks.derived import derived
from rexbench.measure.checks.validity import RoundWatch
from rexbench.measure.config import RunConfig
from rexbench.measure.machine import contention, placement
from rexbench.measure.machine import env as envmod
from rexbench.measure.machine.allocator import heap_state, steady_allocator
from rexbench.measure.run.runners import config_runners, flusher, labelled, sampled
from rexbench.measure.timing.anchor import Anchor
from rexbench.measure.timing.devices import DeviceOps
from rexbench.measure.timing.l2flush import make_flusher
from rexbench.measure.timing.loop import (
    Clock,
    ProgressEvent,
    Runner,
    TimerResult,
    backend_settings,
    measure_interleaved,
)
from rexbench.records.schema import ModelInfo, Record, RunInfo, Timing
from rexbench.records.store import write_record
from rexbench.spec import ModelSpec

if TYPE_CHECKING:
    from rexbench.measure.backends.base import PreparedModel
    from rexbench.measure.run.workers import Isolation, Prepared, Worker

ROUND_SIZE = 10  # calls per runner per round: small enough to interleave, large enough to amortise


@dataclass(frozen=True)
class ProfileEvent:
    """Progress, sent between steps and between timing chunks (never inside a timed region).

    phase: "build", "count", "prepare", "warmup", "timing", "instructions" or "record"; item: a configuration
    label, the anchor's runner name, or None; done/total: calls (warmup/timing) or steps.
    """

    phase: str
    model: str
    item: str | None = None
    done: int = 0
    total: int = 0


ProgressFn = Callable[[ProfileEvent], None]
RecordFn = Callable[[Record, Path | None], None]


@dataclass(frozen=True)
class RoundOptions:
    """What every model of one profile run shares: where and how it is timed, and where its records
    go. out_dir None: nothing is written; on_record(record, path) is called after each record.
    make_flusher(device): the L2 flush of configurations with flush_l2 (rexbench.measure.timing.l2flush)."""

    device: str
    anchor: Anchor
    ops: DeviceOps
    clock: Clock
    round_size: int = ROUND_SIZE
    weights: str | Path | None = None
    out_dir: str | Path | None = None
    progress: ProgressFn | None = None
    on_record: RecordFn | None = None
    abort_when_contended: bool = False  # stop a run certain to end contended (ContendedRun)
    # count each record's instructions (rexbench.measure.counting.instructions)
    instructions: bool = False
    make_flusher: Callable[[str], Callable[[], None]] = make_flusher
    isolation: Isolation | None = None  # worker processes (rexbench.measure.run.workers); None: not

    def emit(self, event: ProfileEvent) -> None:
        if self.progress is not None:
            self.progress(event)


@dataclass(frozen=True)
class PreparedConfig:
    """One configuration of a model, ready to time: the prepared model, the backend state it was
    prepared under (`backend_state()`), the thread info and the counts at its input; spec: its
    model when one measurement times several models (else the one given to measure_prepared);
    parity: the output check of rexbench.measure.checks.parity; remote: the worker process that
    prepared it and times it (rexbench.measure.run.workers; None: prepared in this process)."""

    config: RunConfig
    prepared: PreparedModel | Prepared
    backend: dict[str, Any]
    threads: dict[str, Any]
    counts: dict[str, Any]
    spec: ModelSpec | None = None
    parity: dict[str, Any] | None = None
    remote: Worker | None = None


def measure_prepared(
    spec: ModelSpec,
    items: Sequence[PreparedConfig],
    base_env: dict[str, Any],
    options: RoundOptions,
) -> list[Record]:
    """Time `items` and the anchor in interleaved rounds; store and return one record per item.

    Items of several models (each with its `spec`) are timed in the same rounds; every record of
    one call shares a `run_id`. The GPU's state and torch.compile's recompilations are watched
    through the rounds (rexbench.measure.checks.validity) and stored with each record (`Timing.validity`)."""
    import uuid

    name = ", ".join(dict.fromkeys(str(item.spec or spec) for item in items)) or str(spec)
    run_id = uuid.uuid4().hex[:16]
    allocator = steady_allocator() if options.device == "cpu" else None
    if allocator is not None:  # the heap the warm-up starts from (a new dict: the policy is cached)
        allocator = {**allocator, "heap_before_warmup": heap_state()}
    rounds = _measured(name, items, options)
    if allocator is not None:
        base_env = {**base_env, "allocator": allocator}
    records = []
    for item, timing, runner in zip(items, rounds.timings[:-1], rounds.names, strict=True):
        model = item.spec or spec
        record = Record(
            model=ModelInfo.from_spec(model, _provenance(model, options.weights)),
            run=RunInfo.from_config(item.config),
            env={**base_env, "threads": item.threads},
            counts=item.counts,
            timing=_record_timing(item, timing, rounds, options.anchor, run_id=run_id),
            parity=dict(item.parity or {}),
        )
        record.timing.validity = rounds.watch.validity(runner)
        if item.config.flush_l2 and rounds.flush is not None:
            record.timing.validity["l2_flush"] = dict(rounds.flush.info)  # type: ignore[attr-defined]
        record.timing.contention = rounds.sampler.to_dict()
        if options.instructions:  # after the rounds: a valgrind process, never beside the timing
            record.counts = {**record.counts, **_instructions(model, item.config, options)}
        if item.remote is not None:  # its worker's allocator and recompilations, a fault if any
            item.remote.finish(record)
        notes, bn_remaining = item.prepared.notes, item.prepared.bn_remaining
        if record.timing.samples_ns:  # none from a worker that failed before its first chunk
            record.summary, record.warnings = derived(record, notes, bn_remaining)
        else:
            record.warnings = list(notes)
        path = (
            None
            if options.out_dir is None
            else write_record(record, options.out_dir, replace=False)
        )
        options.emit(ProfileEvent("record", str(model), item.config.label))
        if options.on_record is not None:
            options.on_record(record, path)
        records.append(record)
    return records


@dataclass(frozen=True)
class _Rounds:
    """One measurement's interleaved rounds, as its records take them: the runners' names and
    timings (the anchor's last), the L2 flush, the round watch (GPU state, recompilations), the
    contention sampler, and the device state before and after the rounds."""

    names: list[str]
    timings: list[TimerResult]
    flush: Callable[[], None] | None
    watch: RoundWatch
    sampler: contention.ChunkSampler
    device_start: dict[str, Any]
    device_end: dict[str, Any]


def _measured(name: str, items: Sequence[PreparedConfig], options: RoundOptions) -> _Rounds:
    """The rounds of `items` and the anchor, watched; every setup's backend changes undone after."""
    names, where = labelled(items, name)
    flush = flusher(items, options)
    watch = RoundWatch(
        options.device,
        [*names, f"anchor:{options.anchor.name}"],
        [n for n, i in zip(names, items, strict=True) if i.config.compile and not i.remote],
    )
    with backend_settings():
        start = envmod.device_snapshot(options.device)
        watch.start()
        try:
            timings, sampler = _run_rounds(
                name, items, options, names=names, flush=flush, watch=watch.on_event, where=where
            )
        finally:
            watch.finish()
        end = envmod.device_snapshot(options.device)
    return _Rounds(
        names=names,
        timings=timings,
        flush=flush,
        watch=watch,
        sampler=sampler,
        device_start=start,
        device_end=end,
    )


def _run_rounds(
    name: str,
    items: Sequence[PreparedConfig],
    options: RoundOptions,
    *,
    names: list[str],
    flush: Callable[[], None] | None,
    watch: Callable[[ProgressEvent], None],
    where: dict[str, tuple[str, str]],
) -> tuple[list[TimerResult], contention.ChunkSampler]:
    """The configurations' runners and then the anchor's, measured interleaved; the kernel's
    contention counters are read right before and right after every chunk. names: the runners'
    names; flush: the L2 flush (for configs with flush_l2); watch: what sees every progress event
    first; where: each runner's (model, configuration label) for the progress events."""
    configs = [item.config for item in items]
    runners = config_runners(items, names, flush)
    anchor = options.anchor
    runners.append(Runner(f"anchor:{anchor.name}", anchor.fn, anchor.batch_size, anchor.setup))
    sampler = contention.ChunkSampler(
        [r.name for r in runners],
        model_runners=range(len(items)),
        chunks_per_runner=-(-configs[0].runs // options.round_size),
        abort_when_contended=options.abort_when_contended,
        readers={i: item.remote.counters for i, item in enumerate(items) if item.remote},
    )
    for i, runner in enumerate(runners):
        runner.setup = sampled(runner.setup, sampler, i)
    probe = _probe(items, options)
    anchor_chunks = [0]

    def relay(event: ProgressEvent) -> None:
        watch(event)
        sampler.end(event.phase, event.done)
        if probe is not None and event.phase == "timing" and event.runner == runners[-1].name:
            anchor_chunks[0] += 1
            if anchor_chunks[0] % placement.PROBE_EVERY == 0:
                probe.sample()
        model, item = where.get(event.runner, (name, event.runner))
        options.emit(ProfileEvent(event.phase, model, item, event.done, event.total))

    try:
        if probe is not None:
            probe.sample()
        timings = measure_interleaved(
            runners,
            configs[0].runs,
            configs[0].warmup,
            round_size=options.round_size,
            ops=options.ops,
            clock=options.clock,
            progress=relay,
        )
        if probe is not None:
            probe.sample()
            sampler.placement = probe.to_dict()
    except (RexbenchError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise RexbenchError(f"{name} failed while being timed: {first_line(exc)}") from exc
    finally:
        if probe is not None:
            probe.close()
    return timings, sampler


def _probe(items: Sequence[PreparedConfig], options: RoundOptions) -> placement.Probe | None:
    """The CPU placement probe (rexbench.measure.machine.placement) for runs on more than one thread,
    timed with the real clock (none when a test injects its own)."""
    threads = max(int(item.backend.get("threads") or 1) for item in items)
    real = options.clock is time.perf_counter_ns
    return placement.Probe(threads) if options.device == "cpu" and threads > 1 and real else None


def _record_timing(
    item: PreparedConfig,
    timing: TimerResult,
    rounds: _Rounds,
    anchor: Anchor,
    *,
    run_id: str | None = None,
) -> Timing:
    """The record's Timing: the timer's samples, the anchor's, the device state before and after."""
    return Timing(
        samples_ns=timing.samples_ns,
        warmup_ns=timing.warmup_ns,
        clock=timing.clock,
        compile_s=item.prepared.compile_s,
        peak_memory_bytes=timing.peak_memory_bytes,
        peak_memory_kind=_memory_kind(timing.memory_method),
        device_start=rounds.device_start,
        device_end=rounds.device_end,
        anchor_ns=rounds.timings[-1].samples_ns,
        anchor=anchor.info(),
        backend=timing.backend,
        preparation=item.prepared.to_dict(),
        wall_s=timing.wall_s,
        run_id=run_id,
    )


def _instructions(spec: ModelSpec, config: RunConfig, options: RoundOptions) -> dict[str, Any]:
    """What a record's counts get: the instruction count, or why there is none."""
    from rexbench.measure.counting.instructions import counts_or_reason

    options.emit(ProfileEvent("instructions", str(spec), config.label))
    return counts_or_reason(str(spec), config, weights=options.weights)


def _memory_kind(method: str | None) -> str | None:
    return {
        "cuda_max_memory_allocated": "cuda_max_allocated",
        "vmhwm": "cpu_rss_growth",
        "ru_maxrss": "cpu_rss_growth_lower_bound",
    }.get(method or "", method)


def _provenance(spec: ModelSpec, weights: str | Path | None) -> dict[str, Any]:
    from rexbench.models.provenance import provenance, weights_provenance

    info = provenance(spec)
    if weights is not None:
        info.update(weights_provenance(weights))
    return info
