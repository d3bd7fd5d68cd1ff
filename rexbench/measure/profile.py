"""`rexbench profile` as a library: build, count, prepare, time interleaved with the drift anchor,
summarise, and write one Record per model x configuration. No CLI code here.

Per model: build it once (with --weights), count it once per input shape (params and macs_conv;
the slower counters are left to `rexbench count`), prepare every configuration (torch.compile's
first call timed as compile_s, under the configuration's own threads / cuDNN / TF32 settings),
then time all configurations and the anchor (rexbench.measure.anchor) in small interleaved rounds so that
machine drift hits all of them alike. Each runner's
backend settings are re-applied before each of its chunks, outside the timed region. The records
of a model are written, atomically, as soon as its measurement ends: Ctrl-C keeps every finished
record and leaves no partial file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.measure import env as envmod
from rexbench.measure.anchor import Anchor, make_anchor
from rexbench.measure.config import RunConfig
from rexbench.measure.prepare import check_dtype, prepare, resolve_device
from rexbench.measure.timing import (
    Clock,
    DeviceOps,
    ProgressEvent,
    Runner,
    backend_settings,
    device_ops,
    measure_interleaved,
)
from rexbench.models.shapes import check_options
from rexbench.records.schema import ModelInfo, Record, RunInfo, Timing
from rexbench.records.store import machine_dir, write_record
from rexbench.spec import ModelSpec, parse
from rexbench.stats import NOISE_THRESHOLD, summarize

if TYPE_CHECKING:
    from torch import nn

    from rexbench.measure.prepare import PreparedModel

MACS_CONVENTION = (
    "macs_conv: Conv + Linear multiply-adds of one image (the paper's FLOPs); "
    "GFLOP/s = 2 x macs_conv x batch / median"
)
ROUND_SIZE = 10  # calls per runner per round: small enough to interleave, large enough to amortise
# A sample over STALL_FACTOR x the median is a stall, not noise: on this project's 2-core machines a
# competing process made 2-thread runs 60x slower (each OpenMP barrier waiting out a time slice)
# while the 1-thread anchor was barely affected. STALL_WARN of such samples earns a warning.
STALL_FACTOR = 3
STALL_WARN = 0.01


@dataclass(frozen=True)
class ProfileEvent:
    """Progress, sent between steps and between timing chunks (never inside a timed region).

    phase: "build", "count", "prepare", "warmup", "timing" or "record"; item: a configuration
    label, the anchor's runner name, or None; done/total: calls (warmup/timing) or steps.
    """

    phase: str
    model: str
    item: str | None = None
    done: int = 0
    total: int = 0


ProgressFn = Callable[[ProfileEvent], None]
RecordFn = Callable[[Record, Path | None], None]


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
    round_size: int = ROUND_SIZE,
    anchor: Anchor | None = None,
    ops: DeviceOps | None = None,
    clock: Clock = time.perf_counter_ns,
) -> list[Record]:
    """Profile every model under every configuration; return the records in (model, config) order.

    runs / warmup: override every config's (None: take the configs', which must then agree).
    input_shape: (C, H, W) or "3x224x224" for every model (stored in each config; refused when it
    disagrees with a config's resolution). out_dir None: nothing is written. on_record(record,
    path) is called after each record is stored. anchor / ops / clock: test injection (default:
    `anchor.make_anchor(device)`, the device's DeviceOps, perf_counter_ns).
    All configs must share one device. Every input is checked before any model is built.
    """
    parsed = [parse(s) if isinstance(s, str) else s for s in specs]
    if not parsed:
        raise RexbenchError("no model given; run `rexbench models` for the list")
    if weights is not None and len(parsed) != 1:
        raise RexbenchError("--weights loads one checkpoint: give exactly one model with it")
    configs = _checked_configs(configs, runs, warmup, input_shape)
    device = resolve_device(configs[0].device)
    for config in configs:
        check_dtype(device, config.dtype)
    for spec in parsed:  # input sizes too, before any model is built
        for config in configs:
            check_options(spec, config.input_shape, config.resolution)
    if out_dir is not None:
        check_writable(machine_dir(out_dir, envmod.machine_id()))
    if anchor is None:
        anchor = make_anchor(device)
    ops = ops if ops is not None else device_ops(device)
    records: list[Record] = []
    for spec in parsed:
        records += _profile_model(
            spec,
            configs,
            device,
            weights,
            out_dir,
            progress,
            on_record,
            round_size,
            anchor,
            ops,
            clock,
        )
    return records


def check_writable(folder: Path) -> None:
    """Create `folder` and a file in it now, so an unwritable --out fails before any measurement."""
    import os
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RexbenchError(
            f"cannot write records to {folder}: {exc.strerror or exc}; choose a writable folder with --out"
        ) from None


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
    fields: dict[str, Any] = {}
    if runs is not None:
        fields["runs"] = runs
    if warmup is not None:
        fields["warmup"] = warmup
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
    from rexbench.models.shapes import check_shape, format_shape

    shape = check_shape(input_shape, "--input-shape")
    res = config.resolution
    if res is not None and shape[1:] != (res, res):
        raise RexbenchError(
            f"--input-shape {format_shape(shape)} and --resolution {res} disagree; pass one of them"
        )
    return replace(config, resolution=None, input_shape=shape)


# ------------------------------------------------------------------------------------ one model


def _profile_model(
    spec: ModelSpec,
    configs: list[RunConfig],
    device: str,
    weights: str | Path | None,
    out_dir: str | Path | None,
    progress: ProgressFn | None,
    on_record: RecordFn | None,
    round_size: int,
    anchor: Anchor,
    ops: DeviceOps,
    clock: Clock,
) -> list[Record]:
    from rexbench.models.factory import create_model

    name = str(spec)
    emit = progress or (lambda event: None)
    emit(ProfileEvent("build", name))
    model = create_model(spec, weights=weights)
    shapes = [_input_shape(spec, model, c) for c in configs]
    counts: dict[tuple[int, ...], dict[str, Any]] = {}
    for shape in dict.fromkeys(shapes):
        emit(ProfileEvent("count", name, "x".join(map(str, shape))))
        counts[shape] = count(model, shape, name)

    base_env: dict[str, Any] | None = None
    prepared: list[tuple[PreparedModel, dict[str, Any], dict[str, Any]]] = []
    for i, (config, shape) in enumerate(zip(configs, shapes, strict=True)):
        emit(ProfileEvent("prepare", name, config.label, i, len(configs)))
        with backend_settings(config.threads, config.cudnn_benchmark, config.allow_tf32) as state:
            item = _prepare(model, config, shape, name)
            if base_env is None:  # threads are set: the fingerprint shows what the run uses
                base_env = envmod.fingerprint()
            prepared.append((item, state, envmod.thread_info()))
    del model

    names = _runner_names(configs)
    runners = [
        Runner(names[i], item.run, config.batch_size, setup=_backend_setter(config, state))
        for i, (config, (item, state, _)) in enumerate(zip(configs, prepared, strict=True))
    ]
    runners.append(Runner(f"anchor:{anchor.name}", anchor.fn, anchor.batch_size, anchor.setup))

    def relay(event: ProgressEvent) -> None:
        emit(ProfileEvent(event.phase, name, event.runner, event.done, event.total))

    runs, warmup = configs[0].runs, configs[0].warmup
    with backend_settings():  # every setup's changes are undone afterwards
        start = envmod.device_snapshot(device)
        try:
            timings = measure_interleaved(
                runners, runs, warmup, round_size=round_size, ops=ops, clock=clock, progress=relay
            )
        except (RexbenchError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise RexbenchError(f"{name} failed while being timed: {_first_line(exc)}") from exc
        end = envmod.device_snapshot(device)

    anchor_timing = timings[-1]
    records = []
    for (config, shape, (item, _state, threads)), timing in zip(
        zip(configs, shapes, prepared, strict=True), timings[:-1], strict=True
    ):
        record = Record(
            model=ModelInfo.from_spec(spec, _provenance(spec, weights)),
            run=RunInfo.from_config(config),
            env={**(base_env or {}), "threads": threads},
            counts=counts[shape],
            timing=Timing(
                samples_ns=timing.samples_ns,
                warmup_ns=timing.warmup_ns,
                clock=timing.clock,
                compile_s=item.compile_s,
                peak_memory_bytes=timing.peak_memory_bytes,
                peak_memory_kind=_memory_kind(timing.memory_method),
                device_start=start,
                device_end=end,
                anchor_ns=anchor_timing.samples_ns,
                anchor=anchor.info(),
                backend=timing.backend,
                preparation=item.to_dict(),
                wall_s=timing.wall_s,
            ),
        )
        record.summary, record.warnings = derived(record, item.notes, item.bn_remaining)
        path = write_record(record, out_dir) if out_dir is not None else None
        emit(ProfileEvent("record", name, config.label))
        if on_record is not None:
            on_record(record, path)
        records.append(record)
    prepared.clear()
    if any(c.compile for c in configs):
        _reset_compiler()
    return records


def _input_shape(spec: ModelSpec, model: nn.Module, config: RunConfig) -> tuple[int, int, int]:
    """The (C, H, W) this config measures: its input_shape, its resolution, or the model's own
    (rexbench.models.shapes.resolve_input_shape, which also checks the sizes)."""
    from rexbench.models.shapes import resolve_input_shape

    return resolve_input_shape(spec, model, config.input_shape, config.resolution)


def count(model: nn.Module, shape: Sequence[int], name: str) -> dict[str, Any]:
    """params and macs_conv for one image of `shape` (C, H, W), as a record stores them."""
    from rexbench.measure.counting import count_model

    full = (1, *shape)
    try:
        counts = count_model(model, full, counters=("conv",))
    except RuntimeError as exc:  # e.g. an input the model cannot take
        raise RexbenchError(
            f"could not run {name} on input {'x'.join(map(str, shape))}: {_first_line(exc)}"
        ) from exc
    return {
        "input_shape": list(full),
        "params": counts.params_total,
        "params_trainable": counts.params_trainable,
        "macs_conv": counts.macs_conv,
        "conventions": MACS_CONVENTION,
    }


def _prepare(
    model: nn.Module, config: RunConfig, shape: tuple[int, ...], name: str
) -> PreparedModel:
    try:
        return prepare(model, config, input_shape=shape)
    except (RexbenchError, KeyboardInterrupt):
        raise
    except Exception as exc:
        hint = "; try --config eager or --no-compile" if config.compile else ""
        raise RexbenchError(
            f"{name} could not be prepared as {config.label}: {_first_line(exc)}{hint}"
        ) from exc


def _backend_setter(config: RunConfig, state: dict[str, Any]) -> Callable[[], None]:
    """Re-apply a config's threads / cuDNN / TF32 (as in force when it was prepared) before its chunks."""

    def setup() -> None:
        import torch

        torch.set_num_threads(state["threads"])
        torch.backends.cudnn.benchmark = config.cudnn_benchmark
        torch.backends.cudnn.allow_tf32 = config.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = config.allow_tf32

    return setup


def _runner_names(configs: list[RunConfig]) -> list[str]:
    """Config labels; a label shared by several configs gets its config_id appended."""
    labels = [c.label for c in configs]
    return [
        label if labels.count(label) == 1 else f"{label}#{c.config_id[:6]}"
        for label, c in zip(labels, configs, strict=True)
    ]


def _memory_kind(method: str | None) -> str | None:
    return {
        "cuda_max_memory_allocated": "cuda_max_allocated",
        "vmhwm": "cpu_rss_growth",
        "ru_maxrss": "cpu_rss_growth_lower_bound",
    }.get(method or "", method)


def _provenance(spec: ModelSpec, weights: str | Path | None) -> dict[str, Any]:
    import hashlib

    from rexbench.models.provenance import provenance

    info = provenance(spec)
    if weights is not None:
        path = Path(weights)
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        info.update(weights=str(path.resolve()), weights_sha256=digest.hexdigest())
    return info


def derived(
    record: Record, notes: Sequence[str] = (), bn_remaining: int = 0
) -> tuple[dict[str, Any], list[str]]:
    """The summary (stats.Summary fields, gflops_per_s, anchor ratio, stalled_fraction) and the
    warnings (stalls, noise, unfolded BatchNorm, preparation notes) of a record."""
    assert record.timing is not None
    batch = int(record.run.config.get("batch_size", 1))
    summary = summarize(record.timing.samples_ns, batch)
    data = summary.to_dict()
    macs = record.counts.get("macs_conv")
    data["gflops_per_s"] = (
        2 * macs * batch / summary.median if macs and summary.median > 0 else None
    )
    anchor_ns = record.timing.anchor_ns
    anchor_median = summarize(anchor_ns).median if anchor_ns else None
    data["anchor_median"] = anchor_median
    data["median_over_anchor"] = summary.median / anchor_median if anchor_median else None
    slow = sum(v > STALL_FACTOR * summary.median for v in record.timing.samples_ns)
    data["stalled_fraction"] = slow / summary.n
    warnings = []
    if data["stalled_fraction"] >= STALL_WARN:
        warnings.append(
            f"contended: {data['stalled_fraction']:.1%} of the samples took over {STALL_FACTOR}x the "
            "median (another process competing for the cores? multi-threaded runs suffer most); "
            "re-run on a quiet machine"
        )
    if summary.noisy:
        warnings.append(
            f"noisy: IQR/median = {summary.noise:.1%} > {NOISE_THRESHOLD:.0%}; "
            "other load on the machine? compare configurations measured together"
        )
    if record.run.config.get("fold_bn") and bn_remaining:
        warnings.append(f"{bn_remaining} BatchNorm layer(s) could not be folded")
    warnings += list(notes)
    return data, warnings


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _reset_compiler() -> None:
    """Drop dynamo's caches between models: compiled code of one model is never reused by the
    next, and caches growing past torch._dynamo's recompile limit would fall back to eager."""
    import torch

    torch._dynamo.reset()
