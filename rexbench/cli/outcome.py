"""What the measuring commands (profile, sweep, baseline save) say and return at the end: configurations
that failed to prepare, configurations whose output differs from eager fp32, and a sweep's table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from rexbench.measure.run.profile import ConfigFailure
    from rexbench.records.schema import Record

AllowMismatchOpt = Annotated[
    bool,
    typer.Option(
        "--allow-mismatch",
        help="Exit 0 even when a configuration's output differs from the eager fp32 model's beyond "
        "tolerance (it is recorded as invalid and left out of speed-ups, plots, claims and gates).",
    ),
]


#: a worker's fault (rexbench.measure.run.faults.Fault.kind) as the sweep table says it
FAULTS = {"crashed": "crashed", "killed": "was killed", "exited": "exited", "timeout": "hung"}


def exit_code(
    err: Any,
    records: Sequence[Record],
    failures: Sequence[ConfigFailure],
    allow_mismatch: bool,
) -> int:
    """One line per failed or skipped configuration and one for the invalid ones; 1 when any
    configuration failed, or was invalid without --allow-mismatch; else 0 (a configuration skipped
    for a precision this machine cannot run, rexbench.measure.run.runnable, is no failure). A record
    whose worker failed (`parity["fault"]`, rexbench.measure.run.workers) is invalid too, and said
    among the failures."""
    for failure in failures:
        word = "[yellow]skipped[/]" if failure.skipped else "[red]failed[/]"
        err.print(f"{word}: {failure.line}", highlight=False, soft_wrap=True)
    failures = [f for f in failures if not f.skipped]
    faulted = any("fault" in r.parity for r in records)
    invalid = [r for r in records if not r.valid and "fault" not in r.parity]
    if invalid:
        names = ", ".join(f"{r.model.spec} {r.run.label}" for r in invalid)
        tail = (
            "accepted (--allow-mismatch)" if allow_mismatch else "exit 1 (--allow-mismatch: exit 0)"
        )
        err.print(
            f"[red]invalid[/]: {names}: output differs from the eager fp32 model's beyond "
            f"tolerance; recorded, left out of speed-ups, plots, claims and gates; {tail}",
            highlight=False,
            soft_wrap=True,
        )
    return 1 if failures or faulted or (invalid and not allow_mismatch) else 0


def sweep_table(data: dict[str, Any]) -> Table:
    """The table of a sweep's result (`SweepResult.to_dict()`): every model and configuration
    measured, measured again beside a kept record, skipped as already measured, or failed."""
    from rich.table import Table

    table = Table(title="rexbench sweep", title_justify="left")
    for name in ("model", "config", "median ms", "status"):
        table.add_column(name, justify="right" if name == "median ms" else "left", no_wrap=True)
    kept = {(row["model"], row["config_id"]) for row in data["kept"]}
    for status in ("measured", "skipped"):
        for row in data[status]:
            said = "measured again" if (row["model"], row["config_id"]) in kept else status
            why = f"its worker {FAULTS[row['fault']]}" if row.get("fault") else "output differs"
            shown = said if row["valid"] else f"{said}, [red]INVALID[/] ({why})"
            table.add_row(row["model"], row["config"], median_ms(row), shown)
    for row in data["failed"]:
        table.add_row(row["model"], "-", "-", "failed")
    return table


def median_ms(row: dict[str, Any]) -> str:
    return "-" if row["median_ms"] is None else f"{row['median_ms']:.3f}"
