"""`rexbench baseline save`: reference records (baselines/<machine-id>/) and counts (baselines/counts.json)
that `rexbench gate` compares against (rexbench.gate.save)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexbench.cli.common import console, print_json, print_tables
from rexbench.cli.options import (
    Allocator,
    AllocatorOpt,
    AllOpt,
    InProcessOpt,
    InstructionsOpt,
    JsonOpt,
    MeasureOptions,
    OptionalModelsArg,
    TimeoutOpt,
    WeightsOpt,
    isolation,
    measure_options,
)
from rexbench.cli.outcome import AllowMismatchOpt
from rexbench.cli.progress import ConsoleHooks

if TYPE_CHECKING:
    from rich.table import Table

baseline = typer.Typer(
    name="baseline",
    help="Save the reference records and counts that `rexbench gate` compares against.",
    no_args_is_help=True,
)

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
ForceOpt = Annotated[
    bool,
    typer.Option("--force", help="Save even a baseline measured on a contended machine."),
]


# No dtype or preparation switches: a baseline is measured with named configurations (--config).
@baseline.command("save")
@measure_options("config device batch_size runs warmup resolution input_shape threads", runs=300)
def save(
    models: OptionalModelsArg = None,
    all_models: AllOpt = False,
    from_: FromOpt = None,
    directory: DirOpt = Path("baselines"),
    counts_only: CountsOnlyOpt = False,
    *,
    measure: MeasureOptions,
    weights: WeightsOpt = None,
    force: ForceOpt = False,
    allow_mismatch: AllowMismatchOpt = False,
    instructions: InstructionsOpt = False,
    in_process: InProcessOpt = False,
    allocator: AllocatorOpt = Allocator.steady,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Measure (or take --from records) and store them as baselines; merge counts into counts.json.

    The records go to DIR/<machine-id>/ (a gate compares latency only on the same hardware); the
    counts (params, macs_conv at the model's input and at 224) to DIR/counts.json, for every machine.
    """
    from rexbench.gate.save import SaveRequest, save_baselines

    err = console(stderr=True)
    request = SaveRequest(
        models=tuple(models or ()),
        all_models=all_models,
        from_records=tuple(from_ or ()),
        directory=directory,
        counts_only=counts_only,
        configs=measure.config_options(),
        input_shape=measure.input_shape,
        weights=weights,
        force=force,
        instructions=instructions,
        isolation=isolation(in_process, allocator, timeout),
    )
    hooks = ConsoleHooks(err)
    saved = save_baselines(request, hooks)
    if json_out:
        print_json(saved.to_dict())
        hooks.print_notes()
    else:
        print_tables(counts_table(saved.counts))
        hooks.print_notes()
        _show_saved(saved, err)
    if saved.invalid and not allow_mismatch:  # left out of the baselines either way
        raise typer.Exit(1)


def _show_saved(saved: Any, err: Any) -> None:
    """Where the records and counts went, and any warning."""
    for path in saved.records:
        err.print(f"saved {path}", highlight=False, soft_wrap=True)
    for text in saved.warnings:
        err.print(f"[yellow]warning[/]: {text}", highlight=False, soft_wrap=True)
    err.print(
        f"counts of {len(saved.counts)} model(s) merged into {saved.counts_file}",
        highlight=False,
        soft_wrap=True,
    )


def counts_table(entries: dict[str, dict[str, Any]]) -> Table:
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
    return table
