"""The versioned Record: one model measured with one run configuration, as self-describing JSON.

Follows torch.utils.benchmark's `Measurement` (raw times kept, summaries derived) and asv's rule of
refusing result files of an unknown version with a fix-it message.

Schema rules: adding an optional field keeps SCHEMA_VERSION; renaming, removing or changing the
meaning of a field bumps it, and a function in `MIGRATIONS` upgrades files of the older version.
Nothing is rounded: samples are integer nanoseconds, derived numbers are stored as computed.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.records.derived import ModelView, RecordView

SCHEMA_VERSION = 1
KINDS = ("profile",)

#: schema version N -> function turning a version-N dict into a version-(N+1) dict.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _version() -> str:
    from rexbench import __version__

    return __version__


@dataclass
class ModelInfo(ModelView):
    """What was measured. `spec` is the canonical spec string (str(ModelSpec)).

    provenance: how to rebuild an external model, e.g. {"library": "timm", "library_version":
    "1.0.9", "file": "nets/my.py", "file_sha256": "...", "weights_sha256": "..."}; {} for the zoo.
    Derived: zoo_entry, family, short_label, top1 (`rexbench.records.derived.ModelView`).
    """

    spec: str
    source: str = "zoo"
    kwargs: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: Any, provenance: dict[str, Any] | None = None) -> ModelInfo:
        """From a `rexbench.spec.ModelSpec` (or anything with source/kwargs and a canonical str)."""
        return cls(str(spec), spec.source, dict(spec.kwargs), dict(provenance or {}))


@dataclass
class RunInfo:
    """How it was measured: the run configuration as a plain dict, its label and its hash."""

    config: dict[str, Any]
    label: str
    config_id: str

    @classmethod
    def from_config(cls, config: Any) -> RunInfo:
        """From a `RunConfig` (anything with to_dict(), label and config_id)."""
        return cls(dict(config.to_dict()), str(config.label), str(config.config_id))


@dataclass
class Timing:
    """Raw measurements. samples_ns: one per timed iteration (a whole batch), integer ns.

    clock: "perf_counter_ns" or "cuda_event". peak_memory_kind says what peak_memory_bytes is
    ("cuda_max_allocated", "cpu_rss_growth", or "cpu_rss_growth_lower_bound" where the RSS
    high-water mark could not be reset). device_start/device_end: `env.device_snapshot()`.

    Optional since the first schema (files without them load with the defaults):
    anchor_ns: raw samples of the fixed reference workload timed interleaved with the model
    (`rexbench.measure.timing.anchor`); anchor: its name, version, device and thread count. The gate compares
    median(samples_ns) / median(anchor_ns) now with the same ratio at baseline time.
    backend: threads / cuDNN / TF32 state in force while the model ran (`timing.backend_state`).
    preparation: what `prepare` did (input shape, BN folded, compile notes; PreparedModel.to_dict).
    wall_s: wall time of the whole interleaved measurement this record was part of.
    validity: what says whether the samples can be trusted (rexbench.measure.checks.validity): "gpu", the
    GPU's NVML readings before, once per round during and after the measurement with its power and
    thermal violation time; "recompiles", the graphs torch.compile compiled during the warm-up and
    the timed calls; "l2_flush", the flush buffer when the L2 cache was flushed before each call.
    contention: the kernel's contention counters around every chunk of that measurement (CPU
    pressure, steal, our threads' run-queue wait, page faults; `rexbench.measure.machine.contention`).
    run_id: one id shared by every record timed in the same interleaved measurement (the
    configurations of a model, and the models a sweep measured together); None in older files.
    """

    samples_ns: list[int]
    warmup_ns: list[int] = field(default_factory=list)
    clock: str = "perf_counter_ns"
    compile_s: float | None = None
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None
    device_start: dict[str, Any] | None = None
    device_end: dict[str, Any] | None = None
    anchor_ns: list[int] = field(default_factory=list)
    anchor: dict[str, Any] = field(default_factory=dict)
    backend: dict[str, Any] = field(default_factory=dict)
    preparation: dict[str, Any] = field(default_factory=dict)
    wall_s: float | None = None
    validity: dict[str, Any] = field(default_factory=dict)
    contention: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None


@dataclass
class Record(RecordView):
    """One model x one run configuration on one machine. `summary` is derived from timing.

    parity: the prepared model's output against the eager fp32 model's, checked before timing
    (`rexbench.measure.checks.parity`); {} in files written before the check existed (then not checked).
    Derived: latency, settings, counts, hardware, valid ... (`rexbench.records.derived.RecordView`).
    """

    model: ModelInfo
    run: RunInfo
    env: dict[str, Any]
    counts: dict[str, Any] = field(default_factory=dict)
    timing: Timing | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    parity: dict[str, Any] = field(default_factory=dict)
    kind: str = "profile"
    rexbench_version: str = field(default_factory=_version)
    created: str = field(default_factory=_utc_now)
    schema_version: int = SCHEMA_VERSION

    @property
    def machine_id(self) -> str:
        return self.env["machine_id"]

    @property
    def key(self) -> tuple[str, str]:
        """(spec, config_id): identical keys on one machine are the same measurement."""
        return (self.model.spec, self.run.config_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        head = {k: data.pop(k) for k in ("schema_version", "kind", "rexbench_version", "created")}
        return {**head, **data}

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str = "record") -> Record:
        """Validate and build; RexbenchError naming `source` and the field for anything wrong."""
        data = upgrade(data, source)
        check = _Checker(source)
        check.kind(data)
        model, run, timing = (check.section(data, k) for k in ("model", "run", "timing"))
        env = check.field(data, "env", dict)
        check.field(env, "machine_id", str, "env.")
        return cls(
            model=ModelInfo(
                spec=check.field(model, "spec", str, "model."),
                source=check.field(model, "source", str, "model."),
                kwargs=check.field(model, "kwargs", dict, "model."),
                provenance=check.field(model, "provenance", dict, "model."),
            ),
            run=RunInfo(
                config=check.field(run, "config", dict, "run."),
                label=check.field(run, "label", str, "run."),
                config_id=check.field(run, "config_id", str, "run."),
            ),
            env=env,
            counts=check.field(data, "counts", dict),
            timing=None if timing is None else check.timing(timing),
            summary=check.field(data, "summary", dict),
            warnings=check.field(data, "warnings", list),
            parity=check.optional(data, "parity", dict, {}),
            kind=data["kind"],
            rexbench_version=check.field(data, "rexbench_version", str),
            created=check.field(data, "created", str),
            schema_version=SCHEMA_VERSION,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "record") -> Record:
        return cls.from_dict(loads(text, source), source)


# ------------------------------------------------------------------------------------ versions


def upgrade(
    data: Any,
    source: str = "record",
    reads: int = SCHEMA_VERSION,
    migrations: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Check the schema version of a loaded dict and migrate older versions; refuse the rest."""
    migrations = MIGRATIONS if migrations is None else migrations
    if not isinstance(data, dict):
        raise RexbenchError(f"{source}: not a rexbench file (expected a JSON object)")
    version = data.get("schema_version")
    if version is None:
        raise RexbenchError(
            f"{source} has no schema_version: it was not written by rexbench, or by a pre-release; "
            "re-run the measurement to regenerate it"
        )
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RexbenchError(f"{source}: invalid schema_version {version!r}; the file is damaged")
    if version > reads:
        raise RexbenchError(
            f"{source} was written by a newer rexbench (schema {version}; this one reads "
            f"{reads}): upgrade rexbench (pip install -U rexbench)"
        )
    while version < reads:
        if version not in migrations:
            raise RexbenchError(
                f"{source} was written by an older rexbench (schema {version}; this one reads "
                f"{reads}) and cannot be converted: re-run the measurement to regenerate it"
            )
        data = migrations[version](data)
        version = data["schema_version"] = version + 1
    return data


class _Checker:
    """Field checks whose errors say which file and which field, in one line."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, what: str) -> RexbenchError:
        return RexbenchError(f"{self.source}: {what}; re-run the measurement to regenerate it")

    def field(self, data: dict, name: str, kind: type, prefix: str = "", optional=False) -> Any:
        if name not in data:
            raise self.fail(f"missing field '{prefix}{name}'")
        value = data[name]
        if value is None and optional:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            names = "/".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
            got = type(value).__name__
            raise self.fail(f"field '{prefix}{name}' must be {names}, got {got}")
        return value

    def section(self, data: dict, name: str) -> dict | None:
        return self.field(data, name, dict, optional=name == "timing")

    def kind(self, data: dict) -> None:
        kind = self.field(data, "kind", str)
        if kind not in KINDS:
            raise RexbenchError(
                f"{self.source}: kind {kind!r} is not a record this rexbench reads "
                f"(expected {', '.join(KINDS)})"
            )

    def optional(self, data: dict, name: str, kind: type, default: Any, prefix: str = "") -> Any:
        """A field added after schema 1 was first written: absent means `default`."""
        if name not in data:
            return default
        return self.field(data, name, kind, prefix, optional=default is None)

    def ints(self, data: dict, name: str, default: list[int] | None = None) -> list[int]:
        if default is not None and name not in data:
            return list(default)
        values = self.field(data, name, list, "timing.")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise self.fail(f"field 'timing.{name}' must be a list of integer nanoseconds")
        return values

    def timing(self, t: dict) -> Timing:
        p = "timing."
        return Timing(
            samples_ns=self.ints(t, "samples_ns"),
            warmup_ns=self.ints(t, "warmup_ns"),
            clock=self.field(t, "clock", str, p),
            compile_s=self.field(t, "compile_s", (int, float), p, optional=True),
            peak_memory_bytes=self.field(t, "peak_memory_bytes", int, p, optional=True),
            peak_memory_kind=self.field(t, "peak_memory_kind", str, p, optional=True),
            device_start=self.field(t, "device_start", dict, p, optional=True),
            device_end=self.field(t, "device_end", dict, p, optional=True),
            anchor_ns=self.ints(t, "anchor_ns", default=[]),
            anchor=self.optional(t, "anchor", dict, {}, p),
            backend=self.optional(t, "backend", dict, {}, p),
            preparation=self.optional(t, "preparation", dict, {}, p),
            wall_s=self.optional(t, "wall_s", (int, float), None, p),
            validity=self.optional(t, "validity", dict, {}, p),
            contention=self.optional(t, "contention", dict, {}, p),
            run_id=self.optional(t, "run_id", str, None, p),
        )


# ---------------------------------------------------------------------------------------- JSON


def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars/arrays to Python, tuples to lists, NaN/inf to null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "tolist"):  # numpy scalar or array, without importing numpy
        return _plain(value.tolist())
    raise TypeError(f"cannot store {type(value).__name__} in a record: {value!r}")


def dumps(data: dict[str, Any]) -> str:
    """Indented JSON with lists of numbers on one line (readable diffs for committed baselines)."""
    data = _plain(data)
    token = uuid.uuid4().hex
    inline: list[str] = []

    def fold(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fold(v) for k, v in value.items()}
        if isinstance(value, list):
            if value and all(isinstance(v, (int, float)) for v in value):
                inline.append(json.dumps(value, allow_nan=False))
                return f"{token}{len(inline) - 1}"
            return [fold(v) for v in value]
        return value

    text = json.dumps(fold(data), indent=2, allow_nan=False)
    for i, compact in enumerate(inline):
        text = text.replace(f'"{token}{i}"', compact, 1)
    return text + "\n"


def loads(text: str, source: str = "record") -> Any:
    """Parse JSON; a damaged file gives one line saying where and what to do."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RexbenchError(
            f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "the file is damaged: delete it and re-run the measurement"
        ) from None
