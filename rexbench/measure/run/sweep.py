"""Sweeps: the paper's model sets profiled with one configuration, resumable, interruptible.

A sweep is a list of models (named sets from the paper's tables, or model specs) and a list of run
configurations. The models go to `rexbench.measure.run.profile.profile_models` in groups timed in the
same interleaved rounds (`groups`: by default, the models a paper claim compares, so that a claim's
two latencies are never measured minutes apart), which writes their records atomically as soon as
the group is finished; a model already measured with the identical configuration (same config_id,
on this machine, in the output folder) is skipped unless forced, and a group with anything left to
measure is measured whole. A stored record that is measured again that way (beside a claim
partner still to measure) is kept byte for byte: the new record gets a file of its own
(`rexbench.records.store.write_record(replace=False)`), and readers take the newest. Ctrl-C stops
the sweep and keeps every finished record (the result says it was interrupted).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.measure.run import forked

if TYPE_CHECKING:
    from rexbench.measure.config import RunConfig
    from rexbench.records.schema import Record

ProfileFn = Callable[..., list["Record"]]


@functools.cache
def sets() -> dict[str, tuple[str, ...]]:
    """Named sets, in the row order of the paper's tables (ReXNets and EfficientNets alternate in
    Table 5, so slow drift of the machine hits both families alike)."""
    from rexbench.paper.tables import TABLE5, TABLE_A1, TABLE_A2
    from rexbench.registry import MODELS

    def rows(table: Any) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.model for r in table.rows))

    named = {
        "table5": rows(TABLE5),  # ReXNet x0.9-x2.0 and EfficientNet B0-B3 (§5.1)
        "tableA1": rows(TABLE_A1),  # ReXNet (plain) and every ReXNet width (Appendix B.2)
        "tableA2": rows(TABLE_A2),  # ReXNet-lite and EfficientNet-lite (Appendix B.4)
        "mobile": tuple(e.name for e in MODELS if e.family.startswith("MobileNet")),
    }
    named["all"] = tuple(dict.fromkeys(m for models in named.values() for m in models))
    return named


def _key(name: str) -> str:
    return re.sub(r"[\s_-]+", "", name.lower())


def expand(names: Sequence[str]) -> list[str]:
    """Set names and model specs -> canonical model specs, in order, each once."""
    from rexbench.registry import expand_patterns, is_pattern
    from rexbench.spec import parse

    by_key = {_key(k): v for k, v in sets().items()}
    out: list[str] = []
    for name in names:
        if is_pattern(name):
            out += expand_patterns([name])
            continue
        if _key(name) in by_key:
            out += by_key[_key(name)]
            continue
        try:
            out.append(str(parse(name)))
        except RexbenchError as exc:
            raise RexbenchError(
                f"{name!r} is neither a set ({', '.join(sets())}) nor a model: {exc}"
            ) from None
    if not out:
        raise RexbenchError(f"nothing to sweep: name a set ({', '.join(sets())}) or models")
    return list(dict.fromkeys(out))


def check(
    specs: Sequence[str], configs: Sequence[RunConfig], out_dir: str | Path
) -> tuple[list[RunConfig], list[str]]:
    """Everything a sweep can refuse, before anything is measured or printed: the device of every
    configuration, which ones this machine can run (rexbench.measure.run.runnable: the others are
    skipped, one line each, unless none is left), every model's input size under them, whether
    their batch fits in memory, and a writable --out. Returns the configurations to measure and
    the skipped ones' lines."""
    from rexbench.measure.backends.inputs import resolve_device
    from rexbench.measure.machine.env import machine_id
    from rexbench.measure.machine.memory import check_batch_memory
    from rexbench.measure.run.runnable import runnable
    from rexbench.models.shapes import check_options
    from rexbench.records.store import check_writable, machine_dir
    from rexbench.spec import parse

    device = resolve_device(configs[0].device)  # build_configs: one device for all
    configs, skipped = runnable(configs, device)
    for spec in specs:
        for config in configs:
            check_options(parse(spec), config.input_shape, config.resolution)
    for config in configs:
        check_batch_memory([parse(s) for s in specs], [config], device)
    check_writable(machine_dir(out_dir, machine_id()))
    return configs, [f"{config.label}: {reason}" for config, reason in skipped]


@dataclass
class PlanItem:
    """One model: the configurations still to measure and the records already stored."""

    spec: str
    todo: list[RunConfig]
    done: list[Record] = field(default_factory=list)


def plan(
    specs: Sequence[str],
    configs: Sequence[RunConfig],
    out_dir: str | Path,
    *,
    force: bool = False,
    machine_id: str | None = None,
) -> list[PlanItem]:
    """What a sweep will do: per model, the configs without a stored record (all when forced)."""
    from rexbench.records.store import find_record

    if machine_id is None and not force:
        from rexbench.measure.machine.env import machine_id as current

        machine_id = current()
    items = []
    for spec in specs:
        item = PlanItem(spec, [])
        for config in configs:
            found = None if force else find_record(out_dir, spec, config.config_id, machine_id)
            if found is None:
                item.todo.append(config)
            else:
                item.done.append(found)
        items.append(item)
    return items


INTERLEAVE = ("claims", "all", "none")


def groups(items: Sequence[PlanItem], interleave: str = "claims") -> list[list[PlanItem]]:
    """The plan's models in measuring groups, in plan order. "claims": models linked by a speed
    claim of the paper (rexbench.paper.claims; x2.0 with B3 and B1, B1 with x1.3, ...) share a
    group; "all": one group; "none": one model per group."""
    if interleave not in INTERLEAVE:
        raise RexbenchError(f"--interleave {interleave!r}: choose one of {', '.join(INTERLEAVE)}")
    if interleave == "all":
        return [list(items)] if items else []
    parent = {item.spec: item.spec for item in items}

    def root(spec: str) -> str:
        while parent[spec] != spec:
            spec = parent[spec]
        return spec

    if interleave == "claims":
        from rexbench.paper.claims import CLAIMS

        for claim in CLAIMS:
            if claim.kind == "speedup" and claim.model in parent and claim.baseline in parent:
                parent[root(claim.baseline)] = root(claim.model)
    out: dict[str, list[PlanItem]] = {}
    for item in items:
        out.setdefault(root(item.spec), []).append(item)
    return list(out.values())


@dataclass
class Batch:
    """One call of the profiler: models timed in the same rounds, the configurations any of them
    still needs, and `again`: stored records of these models and configurations, measured again
    beside the others (each new record gets a file of its own; the stored one is kept)."""

    items: list[PlanItem]
    configs: list[RunConfig]
    again: list[Record] = field(default_factory=list)

    @property
    def specs(self) -> list[str]:
        return [i.spec for i in self.items]


def batches(items: Sequence[PlanItem], interleave: str = "claims") -> list[Batch]:
    """What `run` measures, in order: each group (`groups`) with anything left to measure, whole."""
    out = []
    for group in groups(items, interleave):
        if any(i.todo for i in group):
            configs = list({c.config_id: c for i in group for c in i.todo}.values())
            ids = {c.config_id for c in configs}
            again = [r for i in group for r in i.done if r.run.config_id in ids]
            out.append(Batch(group, configs, again))
    return out


@dataclass
class SweepResult:
    records: list[Record] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    skipped: list[PlanItem] = field(default_factory=list)
    kept: list[Record] = field(default_factory=list)  # stored records measured again: kept as well
    failed: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """measured: this sweep's records; kept: stored records this sweep measured again (their
        files unchanged, the new record is the newer); skipped: stored records not measured."""

        def row(r: Record, path: Path | None) -> dict[str, Any]:
            lat = r.latency
            return {
                "model": r.model.spec,
                "config": r.run.label,
                "config_id": r.run.config_id,
                "median_ms": lat.median_ms if lat else None,
                "valid": r.valid,
                "fault": r.parity.get("fault"),  # its worker crashed, was killed or hung
                "record": str(path) if path else None,
            }

        paths = self.paths + [None] * (len(self.records) - len(self.paths))
        kept = {r.key for r in self.kept}
        return {
            "measured": [row(r, p) for r, p in zip(self.records, paths, strict=True)],
            "kept": [row(r, None) for r in self.kept],
            "skipped": [row(r, None) for i in self.skipped for r in i.done if r.key not in kept],
            "failed": [{"model": m, "error": e} for m, e in self.failed],
            "interrupted": self.interrupted,
            "seconds": self.seconds,
        }


def run(
    items: Sequence[PlanItem],
    out_dir: str | Path,
    *,
    keep_going: bool = False,
    interleave: str = "claims",
    on_model: Callable[[int, Batch], None] | None = None,
    profile_fn: ProfileFn | None = None,
    **profile_kwargs: Any,
) -> SweepResult:
    """Measure every planned model with `profile_fn` (default rexbench.measure.run.profile.profile_models),
    one `Batch` of models (`batches(items, interleave)`) per call, timed together, records written to
    `out_dir` as each group finishes; a stored record measured again is kept (`Batch.again`).

    on_model(i, batch) is called before each batch is measured (i: the models of the batches
    before it). A configuration that fails to prepare is recorded in `failed` and the others are
    measured; any other RexbenchError stops the sweep (it is re-raised) unless keep_going, which
    records it and goes on. Ctrl-C ends the sweep with `interrupted=True`; everything finished
    before it is on disk and in the result. profile_kwargs (runs, warmup, weights, input_shape,
    progress, ...) go to `profile_fn`.
    """
    from rexbench.records.store import write_record

    if profile_fn is None:
        from rexbench.measure.run import profile

        profile_fn = profile.profile_models
    result = SweepResult(skipped=[i for i in items if i.done])
    user_on_record = profile_kwargs.pop("on_record", None)
    user_on_failure = profile_kwargs.pop("on_failure", None)
    kept: dict[tuple[str, str], Record] = {}

    def on_record(record: Record, _path: Path | None) -> None:
        again = kept.pop(record.key, None)
        path = write_record(record, out_dir, replace=again is None)
        result.records.append(record)
        result.paths.append(path)
        if again is not None:
            result.kept.append(again)
        if user_on_record is not None:
            user_on_record(record, path)

    def on_failure(failure: Any) -> None:
        result.failed.append((failure.model, failure.line))
        if user_on_failure is not None:
            user_on_failure(failure)

    start = time.monotonic()
    done = 0
    try:
        with forked.kept():  # one fork server per worker environment, for every batch
            for batch in batches(items, interleave):
                kept.clear()
                kept.update({r.key: r for r in batch.again})
                if on_model is not None:
                    on_model(done, batch)
                done += len(batch.items)
                together = {"together": True} if len(batch.items) > 1 else {}
                try:  # out_dir=None: the records are written here, by on_record
                    profile_fn(
                        batch.specs,
                        batch.configs,
                        out_dir=None,
                        on_record=on_record,
                        on_failure=on_failure,
                        **together,
                        **profile_kwargs,
                    )
                except RexbenchError as exc:
                    if not keep_going:
                        raise
                    result.failed.append((", ".join(batch.specs), str(exc)))
    except KeyboardInterrupt:
        result.interrupted = True
    result.seconds = time.monotonic() - start
    return result
