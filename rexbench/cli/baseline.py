"""`rexbench baseline save`: reference records (baselines/<machine-id>/) and counts (baselines/counts.json)
that `rexbench gate` compares against (rexbench.gate.baseline)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexbench.cli.common import (
    InputShapeOpt,
    JsonOpt,
    ResolutionOpt,
    WeightsOpt,
    console,
    print_json,
)
from rexbench.cli.profile import (
    BatchOpt,
    ConfigOpt,
    DeviceOpt,
    ThreadsOpt,
    WarmupOpt,
)
from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    from rexbench.records.schema import Record
    from rexbench.spec import ModelSpec

baseline = typer.Typer(
    name="baseline",
    help="Save the reference records and counts that `rexbench gate` compares against.",
    no_args_is_help=True,
)

OptionalModelsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Model names, aliases or specs (see `rexbench models`).", show_default=False
    ),
]
AllOpt = Annotated[bool, typer.Option("--all", help="Every registered model.")]
FromOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--from",
        help="Existing record files or folders to save instead of measuring (repeatable).",
        show_default=False,
    ),
]
DirOpt = Annotated[
    Path, typer.Option("--dir", help="Baselines folder (records per machine + counts.json).")
]
CountsOnlyOpt = Annotated[
    bool,
    typer.Option(
        "--counts-only",
        help="Only params and macs_conv into counts.json (no timing; machine-independent).",
    ),
]
BaselineRunsOpt = Annotated[int, typer.Option("--runs", help="Timed calls per configuration.")]


def specs_for(models: list[str] | None, all_models: bool) -> list[ModelSpec]:
    """Parsed specs of MODEL... or, with --all, of every registered model (not both)."""
    from rexbench.registry import MODELS
    from rexbench.spec import parse

    if all_models and models:
        raise RexbenchError("give MODEL... or --all, not both")
    names = MODELS.names() if all_models else list(models or [])
    return [parse(name) for name in dict.fromkeys(names)]


@baseline.command("save")
def save(
    models: OptionalModelsArg = None,
    all_models: AllOpt = False,
    from_: FromOpt = None,
    directory: DirOpt = Path("baselines"),
    counts_only: CountsOnlyOpt = False,
    config: ConfigOpt = None,
    device: DeviceOpt = "cpu",
    batch_size: BatchOpt = None,
    runs: BaselineRunsOpt = 300,
    warmup: WarmupOpt = 20,
    resolution: ResolutionOpt = None,
    input_shape: InputShapeOpt = None,
    threads: ThreadsOpt = None,
    weights: WeightsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Measure (or take --from records) and store them as baselines; merge counts into counts.json.

    The records go to DIR/<machine-id>/ (a gate compares latency only on the same hardware); the
    counts (params, macs_conv at the model's input and at 224) to DIR/counts.json, for every machine.
    """
    from rexbench.gate.baseline import count_entries, save_records
    from rexbench.records.store import counts_path, write_counts

    specs = specs_for(models, all_models)
    err = console(stderr=True)
    records: list[Record] = []
    if counts_only:
        if from_:
            raise RexbenchError("--counts-only counts the models now: drop --from")
    elif from_:
        records = _from_records(from_, specs)
        specs = _specs_of(records)
    else:
        if not specs:
            raise RexbenchError("give MODEL... or --all (or --from RECORDS)")
        records = _measure(
            specs,
            config,
            device,
            batch_size,
            runs,
            warmup,
            resolution,
            input_shape,
            threads,
            weights,
            err,
        )
    if not specs:
        raise RexbenchError("give MODEL... or --all (or --from RECORDS)")

    paths = save_records(records, directory) if records else []
    shapes: dict[str, list[Any]] = {}
    for record in records:
        if record.counts.get("input_shape"):
            shapes.setdefault(record.model.spec, []).append(record.counts["input_shape"])
    with err.status("counting") as status:
        entries = count_entries(
            specs,
            shapes,
            progress=lambda s: status.update(f"counting {s}"),
            input_shape=input_shape,
            resolution=resolution,
        )
    counts_file = write_counts(directory, entries)
    data = {
        "counts_file": str(counts_path(directory)),
        "counts": entries,
        "records": [str(p) for p in paths],
        "warnings": _warnings(records),
    }
    if json_out:
        print_json(data)
        return
    _print_counts(entries)
    for path in paths:
        err.print(f"saved {path}", highlight=False, soft_wrap=True)
    for text in data["warnings"]:
        err.print(f"[yellow]warning[/]: {text}", highlight=False, soft_wrap=True)
    err.print(
        f"counts of {len(entries)} model(s) merged into {counts_file}",
        highlight=False,
        soft_wrap=True,
    )


def _warnings(records: list[Record]) -> list[str]:
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


def _from_records(paths: list[Path], specs: list[ModelSpec]) -> list[Record]:
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


def _measure(
    specs: list[ModelSpec],
    config: list[str] | None,
    device: str,
    batch_size: int | None,
    runs: int,
    warmup: int,
    resolution: int | None,
    input_shape: str | None,
    threads: int | None,
    weights: Path | None,
    err: Any,
) -> list[Record]:
    from rexbench.cli.profile import ProgressView, build_configs
    from rexbench.measure.profile import profile_models

    configs, note = build_configs(
        device=device,
        batch_size=batch_size,
        runs=runs,
        warmup=warmup,
        resolution=resolution,
        dtype="fp32",
        channels_last=None,
        compile=None,
        compile_mode=None,
        names=config,
        threads=threads,
    )
    err.print(note, highlight=False, soft_wrap=True)
    with ProgressView(err, len(configs) + 1, runs, warmup) as view:
        return profile_models(
            specs, configs, weights=weights, input_shape=input_shape, progress=view.update
        )


def _print_counts(entries: dict[str, dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="Counts baseline (exact; macs_conv = Conv + Linear multiply-adds)")
    table.add_column("model", no_wrap=True)
    table.add_column("input", justify="right")
    for name in ("params_total", "params_trainable", "macs_conv", "macs_conv@224"):
        table.add_column(name, justify="right", no_wrap=True)
    for spec, e in entries.items():
        row = [e.get(k) for k in ("params_total", "params_trainable", "macs_conv", "macs_conv@224")]
        cells = ["-" if v is None else f"{v:,}" for v in row]
        table.add_row(spec, str(e.get("resolution") or e.get("input_shape")), *cells)
    print_wide(table)


def print_wide(table: Any) -> None:
    """Print on stdout; when it is not a terminal (CI logs), widen the page so no column is cut."""
    from rich.measure import Measurement

    out = console()
    if not out.is_terminal:
        needed = Measurement.get(out, out.options.update_width(10**5), table).maximum
        out.width = max(out.width, min(needed, 240))
    out.print(table)
