"""Saving baselines: records measured now (or given) into baselines/<machine-id>/, and their counts
merged into baselines/counts.json (what `rexbench baseline save` does). No Typer or Rich."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.gate.run import Hooks, Quiet, select_specs
from rexbench.measure.config import ConfigOptions

if TYPE_CHECKING:
    from rexbench.measure.run.workers import Isolation
    from rexbench.records.schema import Record
    from rexbench.spec import ModelSpec


@dataclass(frozen=True)
class SaveRequest:
    """What to save: MODEL... or all models, measured now with `configs` (or taken from records,
    or counted only), into `directory`."""

    models: tuple[str, ...] = ()
    all_models: bool = False
    from_records: tuple[Path, ...] = ()
    directory: Path = Path("baselines")
    counts_only: bool = False
    configs: ConfigOptions = field(default_factory=lambda: ConfigOptions(runs=300))
    input_shape: str | None = None
    weights: Path | None = None
    force: bool = False  # save records measured under contention too
    instructions: bool = (
        False  # count each record's instructions (rexbench.measure.counting.instructions)
    )
    isolation: Isolation | None = None  # worker processes or not (None: the default)


@dataclass
class SavedBaselines:
    """What was written: the counts file and its new entries, the record files, and warnings."""

    counts_file: Path
    counts: dict[str, dict[str, Any]]
    records: list[Path]
    warnings: list[str]
    invalid: int = 0  # measured records left out because their output differs from eager fp32

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts_file": str(self.counts_file),
            "counts": self.counts,
            "records": [str(p) for p in self.records],
            "warnings": self.warnings,
            "invalid": self.invalid,
        }


def save_baselines(request: SaveRequest, hooks: Hooks | None = None) -> SavedBaselines:
    """Measure (or take the given records), store them as baselines, merge their counts."""
    from rexbench.gate.baseline import count_entries, save_records
    from rexbench.records.store import write_counts

    hooks = hooks if hooks is not None else Quiet()
    specs = select_specs(request.models, request.all_models)
    records: list[Record] = []
    if request.counts_only and request.from_records:
        raise RexbenchError("--counts-only counts the models now: drop --from")
    if request.from_records:
        records = _given_records(list(request.from_records), specs)
        specs = _specs_of(records)
    if not specs:
        raise RexbenchError("give MODEL... or --all (or --from RECORDS)")
    _check_directory(request.directory)
    if not request.counts_only and not request.from_records:
        records = _measure(specs, request, hooks)
    if not request.force:
        refuse_contended(records)

    invalid = [r for r in records if not r.valid]
    records = [r for r in records if r.valid]  # never a reference: its output is wrong
    paths = save_records(records, request.directory) if records else []
    shapes: dict[str, list[Any]] = {}
    for record in records:
        if record.counts.get("input_shape"):
            shapes.setdefault(record.model.spec, []).append(record.counts["input_shape"])
    with hooks.counting() as counting:
        entries = count_entries(
            specs,
            shapes,
            progress=counting,
            input_shape=request.input_shape,
            resolution=request.configs.resolution,
        )
    counts_file = write_counts(request.directory, entries)
    warnings = baseline_warnings(records) + [
        f"{r.model.spec} ({r.run.label}): not saved: {r.parity_text}, its output differs from the "
        "eager fp32 model's"
        for r in invalid
    ]
    return SavedBaselines(counts_file, entries, paths, warnings, invalid=len(invalid))


def _check_directory(directory: Path) -> None:
    """What would make the save fail after measuring, checked before anything is measured or
    written: a damaged counts.json (its advice keeps the other models' counts) and a --dir that
    cannot be written."""
    from rexbench.records.store import check_writable, counts_path, read_counts

    read_counts(directory, missing_ok=True)
    check_writable(counts_path(directory).parent, option="--dir")


def refuse_contended(records: list[Record]) -> None:
    """A baseline measured under contention would make every later gate judge against a slow
    reference: refused (RexbenchError, nothing written) unless forced."""
    from rexbench.gate.contended import contended

    bad = [(r, why) for r in records if (why := contended(r))]
    if bad:
        what = "; ".join(f"{r.model.spec} ({r.run.label}): {why}" for r, why in bad)
        raise RexbenchError(
            f"not saved: measured on a contended machine ({what}); save it again when the machine "
            "is quiet, or pass --force to keep it anyway"
        )


def baseline_warnings(records: list[Record]) -> list[str]:
    """Noise and busy-machine warnings of the saved baselines (they weaken every later gate)."""
    from rexbench.gate.evaluate import busy

    out = []
    for r in records:
        where = f"{r.model.spec} ({r.run.label})"
        out += [f"{where}: {w}" for w in r.warnings]
        why = busy(r)
        if why:
            out.append(
                f"{where}: measured on a busy machine ({why}); save it again when it is quiet"
            )
    return out


def _given_records(paths: list[Path], specs: list[ModelSpec]) -> list[Record]:
    from rexbench.records.store import load_records

    records = load_records(paths)
    if specs:
        wanted = {str(s) for s in specs}
        records = [r for r in records if r.model.spec in wanted]
        missing = wanted - {r.model.spec for r in records}
        if missing:
            raise RexbenchError(
                f"no record of {', '.join(sorted(missing))} in {', '.join(map(str, paths))}"
            )
    if not records:
        raise RexbenchError(f"no records in {', '.join(map(str, paths))}")
    return records


def _specs_of(records: list[Record]) -> list[ModelSpec]:
    from rexbench.spec import parse

    return [parse(spec) for spec in dict.fromkeys(r.model.spec for r in records)]


def _measure(specs: list[ModelSpec], request: SaveRequest, hooks: Hooks) -> list[Record]:
    from rexbench.measure.config import build_configs
    from rexbench.measure.run.profile import ConfigFailure, profile_models

    configs, note = build_configs(request.configs)
    hooks.note(note)
    runners, runs, warmup = len(configs) + 1, request.configs.runs, request.configs.warmup
    failures: list[ConfigFailure] = []

    def failed(failure: ConfigFailure) -> None:  # a skipped precision is a note, not an error
        if failure.skipped:
            hooks.note(f"skipped: {failure.line}")
        else:
            failures.append(failure)

    with hooks.measuring(runners, runs, warmup) as progress:
        records = profile_models(
            specs,
            configs,
            weights=request.weights,
            input_shape=request.input_shape,
            progress=progress,
            on_failure=failed,
            instructions=request.instructions,
            isolation=request.isolation,
        )
    if failures:
        raise RexbenchError("; ".join(f.line for f in failures))
    return records
