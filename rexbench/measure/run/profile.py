"""`rexbench profile` as a library: build, count, prepare, time interleaved with the drift anchor,
summarise, and write one Record per model x configuration. No CLI code here. Per model: build it once
(with --weights), count it once per input shape, prepare every configuration under its own threads /
cuDNN / TF32 settings, then time all of them and the anchor in small interleaved rounds
(rexbench.measure.run.rounds) so that machine drift hits them alike. Records are written atomically as
soon as a model's measurement ends: Ctrl-C keeps every finished one and leaves no partial file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError, first_line
from rexbench.measure.backends.inputs import resolve_device
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.config import RunConfig
from rexbench.measure.machine import env as envmod
from rexbench.measure.machine.allocator import steady_allocator
from rexbench.measure.machine.memory import check_batch_memory
from rexbench.measure.run import calibrated, forked
from rexbench.measure.run.compile_cache import remove_truncated
from rexbench.measure.run.compiler import compile_room, reset_compiler
from rexbench.measure.run.counted import built_and_counted
from rexbench.measure.run.forked import INDUCTOR
from rexbench.measure.run.installed import check_installed
from rexbench.measure.run.isolated import prepare_in_workers
from rexbench.measure.run.parts import REAL, Parts
from rexbench.measure.run.rounds import (
    ROUND_SIZE,
    PreparedConfig,
    ProfileEvent,
    ProgressFn,
    RecordFn,
    RoundOptions,
    measure_prepared,
)
from rexbench.measure.run.runnable import ConfigFailure, runnable
from rexbench.measure.run.workers import Isolation, WorkerPool
from rexbench.measure.timing.devices import DeviceOps, device_ops, oom_error
from rexbench.measure.timing.loop import backend_settings
from rexbench.models.shapes import check_options
from rexbench.records.schema import Record
from rexbench.records.store import check_writable, machine_dir
from rexbench.spec import ModelSpec, parse

if TYPE_CHECKING:
    from torch import nn

    from rexbench.measure.backends.base import PreparedModel
    from rexbench.measure.backends.calibration import Calibration

FailureFn = Callable[["ConfigFailure"], None]
#: (spec, prepared configurations, base fingerprint, options) -> their records, as measure_prepared
MeasureFn = Callable[
    [ModelSpec, Sequence[PreparedConfig], dict[str, Any], RoundOptions], list[Record]
]


def profile_models(
    specs: Sequence[str | ModelSpec],
    configs: Sequence[RunConfig],
    *,
    runs: int | None = None,
    warmup: int | None = None,
    weights: str | Path | None = None,
    input_shape: str | Sequence[int] | None = None,
    out_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
    on_record: RecordFn | None = None,
    on_failure: FailureFn | None = None,
    together: bool = False,
    round_size: int = ROUND_SIZE,
    abort_when_contended: bool = False,
    instructions: bool = False,
    parts: Parts = REAL,
    measure: MeasureFn = measure_prepared,
    isolation: Isolation | None = None,
) -> list[Record]:
    """Profile every model under every configuration; return the records in (model, config) order.

    runs / warmup: override every config's (None: take the configs', which must then agree).
    input_shape: (C, H, W) or "3x224x224" for every model (stored in each config; refused when it
    disagrees with a config's resolution). out_dir None: nothing is written. on_record(record,
    path) is called after each record is stored. A configuration that cannot be prepared, or is
    skipped (run.runnable: never an error), is left out and passed to on_failure (without one: a
    RexbenchError after the others were measured). together: every model timed in the same
    interleaved rounds (else one model after the other). Every configuration's output is checked
    against the eager fp32 model's before it is timed (rexbench.measure.checks.parity; the record's
    `parity`). abort_when_contended: raise `contention.ContendedRun` as soon as a run is certain to
    end contended (the gate re-measures then). instructions: count each record's instructions per call under callgrind after its
    rounds (rexbench.measure.counting.instructions; minutes per configuration). parts: the device
    operations, clock, anchor and preparation measured with (rexbench.measure.run.parts; tests pass
    fakes). measure: times one group's prepared configurations and returns their records (default
    rounds.measure_prepared; the GPU check's also falls back to one configuration at a time).
    isolation: each configuration in a worker process of its own (default), or all in this one
    (rexbench.measure.run.workers); with test doubles in `parts`, always in this one.
    All configs must share one device. Every input is checked before any model is built.
    """
    parsed = _parsed(specs, weights)
    configs = _checked_configs(configs, runs, warmup, input_shape)
    device = resolve_device(configs[0].device)
    configs = _check_inputs(parsed, configs, device, instructions, skipped=on_failure)
    if out_dir is not None:
        check_writable(machine_dir(out_dir, envmod.machine_id()))
    if device == "cpu":  # before any model is built: its weights share the activations' heap
        steady_allocator()
    options = RoundOptions(
        device=device,
        anchor=parts.make_anchor(device, configs[0].threads),
        ops=parts.device_ops(device),
        make_flusher=parts.make_flusher,
        clock=parts.clock,
        round_size=round_size,
        weights=weights,
        out_dir=out_dir,
        progress=progress,
        on_record=on_record,
        abort_when_contended=abort_when_contended,
        instructions=instructions,
        isolation=(isolation or Isolation()).checked(in_process=parts != REAL),
    )
    failures: list[ConfigFailure] = []

    def failed(failure: ConfigFailure) -> None:
        failures.append(failure)
        if on_failure is not None:
            on_failure(failure)

    records: list[Record] = []
    with forked.kept():  # the workers' fork servers, for every group (a sweep's, when in one)
        for group in [parsed] if together else [[spec] for spec in parsed]:
            records += _profile_group(group, configs, options, failed, parts=parts, measure=measure)
    if failures and on_failure is None:
        raise RexbenchError("; ".join(f.line for f in failures))
    return records


def _parsed(specs: Sequence[str | ModelSpec], weights: str | Path | None) -> list[ModelSpec]:
    """The models, parsed; none, or several with one checkpoint, refused in one line."""
    parsed = [parse(s) if isinstance(s, str) else s for s in specs]
    if not parsed:
        raise RexbenchError("no model given; run `rexbench models` for the list")
    if weights is not None and len(parsed) != 1:
        raise RexbenchError("--weights loads one checkpoint: give exactly one model with it")
    return parsed


def _check_inputs(
    specs: list[ModelSpec],
    configs: list[RunConfig],
    device: str,
    instructions: bool,
    *,
    skipped: FailureFn | None,
) -> list[RunConfig]:
    """Before any model is built: what must be installed (all of it named at once), which
    configurations this machine can run (the others passed to `skipped`, each with its reason),
    input sizes, and whether the batch fits in memory. Returns the configurations to measure."""
    check_installed(configs, specs, instructions)
    configs, unrunnable = runnable(configs, device)
    for config, reason in unrunnable:
        if skipped is not None:
            skipped(ConfigFailure(", ".join(map(str, specs)), config.label, reason, skipped=True))
    for config in configs:
        for spec in specs:
            check_options(spec, config.input_shape, config.resolution)
    check_batch_memory(specs, configs, device)
    return configs


def _checked_configs(
    configs: Sequence[RunConfig],
    runs: int | None,
    warmup: int | None,
    input_shape: str | Sequence[int] | None,
) -> list[RunConfig]:
    """One device, one runs/warmup for all (interleaving needs equal counts), duplicates dropped."""
    if not configs:
        raise RexbenchError("no configuration to measure")
    devices = sorted({c.device for c in configs})
    if len(devices) > 1:
        raise RexbenchError(
            f"configurations on several devices ({', '.join(devices)}): profile one device at a time"
        )
    for name, value in (("runs", runs), ("warmup", warmup)):
        values = {getattr(c, name) for c in configs}
        if value is None and len(values) > 1:
            raise RexbenchError(
                f"configurations disagree on {name} ({sorted(values)}): pass {name}=N"
            )
    fields = {k: v for k, v in (("runs", runs), ("warmup", warmup)) if v is not None}
    out: list[RunConfig] = []
    seen: set[str] = set()
    for config in configs:
        config = with_input_shape(replace(config, **fields), input_shape)
        if config.config_id not in seen:
            seen.add(config.config_id)
            out.append(config)
    return out


def with_input_shape(config: RunConfig, input_shape: str | Sequence[int] | None) -> RunConfig:
    """`config` measuring `input_shape` (C, H, W) (None: unchanged); its config_id changes with it."""
    if input_shape is None:
        return config
    shape = check_options(None, input_shape, config.resolution)
    return replace(config, resolution=None, input_shape=shape)


# ------------------------------------------------------------------------------------ one model


def _profile_group(
    specs: list[ModelSpec],
    configs: list[RunConfig],
    options: RoundOptions,
    failed: FailureFn,
    *,
    parts: Parts,
    measure: MeasureFn,
) -> list[Record]:
    """Prepare every configuration of every model of the group (in this process, or each in a
    worker process, rexbench.measure.run.workers), then time them all in the same interleaved
    rounds (rexbench.measure.run.rounds). The group's workers are stopped when it is done."""
    items: list[PreparedConfig] = []
    base_env: dict[str, Any] | None = None
    with WorkerPool(options.isolation or Isolation(in_process=True), _preload(configs)) as pool:
        compiled = any(c.compile for c in configs) and not pool.active
        with compile_room(len(specs) * len(configs) if compiled and len(specs) > 1 else 0):
            for spec in specs:
                if not pool.active:
                    more, env = _prepare_model(spec, configs, options, failed, parts)
                else:
                    more, env = prepare_in_workers(
                        spec, configs, options, _failed(failed, spec), pool
                    )
                items += more
                base_env = base_env or env
        records = measure(specs[0], items, base_env or {}, options) if items else []
        for model, label, reason in pool.faults():  # workers that crashed, were killed or hung
            failed(ConfigFailure(model, label, reason))
    items.clear()
    if compiled:
        reset_compiler()
    return records


def _preload(configs: Sequence[RunConfig]) -> tuple[str, ...]:
    """What the workers' fork servers set up before forking (rexbench.measure.run.forkserver)."""
    return (INDUCTOR,) if any(c.compile for c in configs) else ()


def _failed(failed: FailureFn, spec: ModelSpec) -> Callable[[str, str], None]:
    """(configuration label, reason) -> `failed`, for a configuration of `spec`."""
    return lambda label, reason: failed(ConfigFailure(str(spec), label, reason))


def _prepare_model(
    spec: ModelSpec,
    configs: list[RunConfig],
    options: RoundOptions,
    failed: FailureFn,
    parts: Parts,
) -> tuple[list[PreparedConfig], dict[str, Any] | None]:
    """Build the model, count it once per input shape, give it weights a parity check can see
    through (without --weights), take the eager references, prepare and check every configuration
    under its own backend settings. A configuration that cannot be prepared or checked goes to
    `failed`.

    The order keeps the heap the way a fresh process has it (glibc, steady allocator): the eager
    references' model copies are freed before the prepared copies fill their room, and the last
    configuration is prepared on the built model itself, so no freed copy of the weights is left
    for the timed calls' buffers to be scattered into. Measured in benchmarks/cli_overhead.py: with
    the references taken after preparing and the built model freed, 40 MB of free holes were left in
    the heap, and a compiled model ran 8-12% slower than in a minimal loop when both virtual CPUs
    shared one core complex (docs/gate.md)."""
    from rexbench.measure.checks import parity

    name = str(spec)
    model, shapes, counts = built_and_counted(spec, configs, options)
    if options.weights is None:
        weights = parity.nontrivial_weights(model)
    else:
        weights = f"the checkpoint {Path(options.weights).name}"
    references = _references(model, configs, shapes, parts.reference_output)
    photos = calibrated.references(model, configs, shapes, options.weights)
    base_env: dict[str, Any] | None = None
    items: list[PreparedConfig] = []
    for i, (config, shape) in enumerate(zip(configs, shapes, strict=True)):
        options.emit(ProfileEvent("prepare", name, config.label, i, len(configs)))
        with backend_settings(config.threads, config.cudnn_benchmark, config.allow_tf32) as state:
            try:
                in_place = i == len(configs) - 1  # nothing needs the built model after this one
                prepared = prepare_config(
                    parts.prepare,
                    model,
                    config,
                    shape,
                    name=name,
                    in_place=in_place,
                    calibration=calibrated.calibration(config, options.weights),
                )
                reference = references[shape, config.batch_size]
                check = check_output(prepared, reference, weights, options.ops)
                calibrated.add_fidelity(check, prepared, photos.get(shape), options.weights)
            except RexbenchError as exc:
                if str(exc).startswith("out of memory"):  # devices.oom_error: smaller batch, all
                    raise
                failed(ConfigFailure(name, config.label, str(exc)))
                continue
            if base_env is None:  # threads are set: the fingerprint shows what the run uses
                base_env = envmod.fingerprint()
            threads = envmod.thread_info()
        items.append(
            PreparedConfig(config, prepared, state, threads, counts[shape], spec=spec, parity=check)
        )
    return items, base_env


def prepare_config(
    prepare: Callable[..., PreparedModel],
    model: nn.Module,
    config: RunConfig,
    shape: tuple[int, ...],
    *,
    name: str,
    in_place: bool,
    calibration: Calibration | None = None,
) -> PreparedModel:
    """`prepare` (Parts.prepare) with one line naming the model, configuration and backend when it
    fails; `calibration`: what a configuration that quantizes is calibrated on (run.calibrated)."""
    backend = BACKENDS.get(config.runtime)
    what = f"{name} could not be prepared as {config.label} ({backend.title} {backend.version()})"
    try:
        return prepare(model, config, input_shape=shape, in_place=in_place, calibration=calibration)
    except KeyboardInterrupt:
        raise
    except RexbenchError as exc:
        if str(exc).startswith("out of memory"):  # devices.oom_error: _prepare_model raises it
            raise
        raise RexbenchError(f"{what}: {exc}") from exc
    except Exception as exc:
        if device_ops(config.device).is_oom(exc):  # the input batch, or a copy of the model
            raise oom_error(config.device, config.batch_size, "the preparation") from None
        repaired = remove_truncated(exc)
        if repaired is not None:
            raise RexbenchError(f"{what}: {repaired}") from exc
        hint = "; try --config eager or --no-compile" if config.compile else ""
        raise RexbenchError(f"{what}: {first_line(exc)}{hint}") from exc


def _references(
    model: nn.Module,
    configs: list[RunConfig],
    shapes: list[tuple[int, ...]],
    reference_output: Callable[..., Any],
) -> dict[tuple[Any, ...], Any]:
    """The eager fp32 output (rexbench.measure.checks.parity) per (input shape, batch size), or the
    exception that computing it raised, which the check of each configuration needing it raises."""
    out: dict[tuple[Any, ...], Any] = {}
    for config, shape in zip(configs, shapes, strict=True):
        if (shape, config.batch_size) not in out:
            try:
                out[shape, config.batch_size] = reference_output(model, config, shape)
            except Exception as exc:
                out[shape, config.batch_size] = exc
    return out


def check_output(
    prepared: PreparedModel, reference: Any, weights: str, ops: DeviceOps
) -> dict[str, Any]:
    """The output parity of a prepared configuration (rexbench.measure.checks.parity), noted if invalid."""
    from rexbench.measure.checks import parity
    from rexbench.measure.timing.devices import oom_error

    config = prepared.config
    try:
        if isinstance(reference, Exception):
            raise reference
        data = parity.check(prepared, reference, weights)
    except Exception as exc:
        if ops.is_oom(exc):
            ops.after_oom()
            raise oom_error(prepared.device, config.batch_size, "the output check") from None
        raise RexbenchError(
            f"{config.label} failed on its first output check: {first_line(exc)}"
        ) from exc
    if not data["valid"]:
        prepared.notes.append(parity.invalid_note(data))
    return data
