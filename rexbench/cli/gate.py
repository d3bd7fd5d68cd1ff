"""`rexbench gate`: compare models now against their baselines; exit 0 pass, 1 regression, 2 error.

The run is rexbench.gate.run (what is measured or counted now), the rules are in rexbench.gate.checks,
the pairing in rexbench.gate.evaluate, the pyproject.toml settings in rexbench.gate.config, the
Markdown summary in rexbench.gate.report.
"""

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
    JsonOpt,
    OptionalModelsArg,
    TimeoutOpt,
    isolation,
)
from rexbench.cli.progress import ConsoleHooks
from rexbench.cli.summary import EMPTY_NOTE, SummaryOpt, summary_file

if TYPE_CHECKING:
    from rich.table import Table

    from rexbench.gate.report import GateReport

BaselineOpt = Annotated[
    Path | None,
    typer.Option(
        "--baseline",
        help="Baselines folder (default: [tool.rexbench.gate] baseline, else baselines/).",
        show_default=False,
    ),
]
FromOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--from",
        help="Judge these record files or folders (e.g. from `rexbench profile`) instead of measuring now.",
        show_default=False,
    ),
]
CheckOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--check",
        help="Extra check, repeatable: params:=, macs_conv:=, latency.median:+10%, latency.p10:+10%, "
        "latency.p90:+20%, throughput:-10%, instructions:+2% (callgrind; minutes per configuration). "
        "Replaces a default on the same metric.",
        show_default=False,
    ),
]
CountsOnlyOpt = Annotated[
    bool,
    typer.Option(
        "--counts-only", help="Count params/MACs now against counts.json; no timing (fast)."
    ),
]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="A baseline from other hardware (or none) fails the gate.")
]
FailInconclusiveOpt = Annotated[
    bool,
    typer.Option("--fail-on-inconclusive", help="An inconclusive latency check fails the gate."),
]
SameSourceOpt = Annotated[
    bool,
    typer.Option(
        "--require-same-source", help="Refuse (exit 2) a py: model whose source file changed."
    ),
]
RemeasureRunsOpt = Annotated[
    int | None,
    typer.Option(
        "--runs",
        help="Timed calls when re-measuring (default: the baseline's).",
        show_default=False,
    ),
]
RemeasureWarmupOpt = Annotated[
    int | None,
    typer.Option(
        "--warmup", help="Untimed calls first (default: the baseline's).", show_default=False
    ),
]
AttemptsOpt = Annotated[
    int | None,
    typer.Option(
        "--attempts",
        min=1,
        help="Measurements per model while the machine is contended (default 3); then inconclusive.",
        show_default=False,
    ),
]


def gate(
    models: OptionalModelsArg = None,
    all_models: AllOpt = False,
    baseline: BaselineOpt = None,
    from_: FromOpt = None,
    check: CheckOpt = None,
    counts_only: CountsOnlyOpt = False,
    strict: StrictOpt = False,
    fail_on_inconclusive: FailInconclusiveOpt = False,
    require_same_source: SameSourceOpt = False,
    runs: RemeasureRunsOpt = None,
    warmup: RemeasureWarmupOpt = None,
    attempts: AttemptsOpt = None,
    in_process: InProcessOpt = False,
    allocator: AllocatorOpt = Allocator.steady,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """Check models against their baselines: counts exactly, latency with threshold + significance.

    Without --from, each model is re-measured with its baseline's configurations on this machine;
    a measurement the kernel reports as contended is repeated (--attempts), never judged.
    Exit codes: 0 pass (inconclusive warns), 1 regression, 2 usage or configuration error.
    """
    from rexbench.gate.report import append_summary
    from rexbench.gate.run import GateRequest, run_gate

    request = GateRequest(
        models=tuple(models or ()),
        all_models=all_models,
        baseline=baseline,
        from_records=tuple(from_ or ()),
        checks=tuple(check or ()),
        counts_only=counts_only,
        strict=strict,
        fail_on_inconclusive=fail_on_inconclusive,
        require_same_source=require_same_source,
        runs=runs,
        warmup=warmup,
        attempts=attempts,
        isolation=isolation(in_process, allocator, timeout),
    )
    summary_path = summary_file(summary)  # before anything is measured
    err = console(stderr=True)
    hooks = ConsoleHooks(err)
    report = run_gate(request, hooks)
    if summary_path is not None:
        append_summary(summary_path, report)
    elif summary is not None:
        hooks.note(EMPTY_NOTE)
    if json_out:
        print_json(report.to_dict())
    else:
        _render(report, err)
    hooks.print_notes()
    raise typer.Exit(report.exit_code)


def gate_table(report: GateReport) -> Table:
    """The verdicts: one row per model x configuration x check."""
    from rich.table import Table

    from rexbench.gate import report as fmt

    style = {
        "pass": "green",
        "regression": "bold red",
        "inconclusive": "yellow",
        "not comparable": "dim",
    }
    caption = "ratio = current / baseline; counts compare exactly"
    if any(v.config != "counts" for v in report.verdicts):
        caption += (
            "; latency: (anchor) = normalised by the drift anchor, regression = ratio > limit "
            "and significant (p < alpha, CI low > 1)"
        )
    table = Table(title="rexbench gate", caption=caption)
    numeric = ("baseline", "current", "ratio", "limit")
    for name in ("model", "config", "check", *numeric, "evidence", "outcome"):
        table.add_column(name, no_wrap=True, justify="right" if name in numeric else "left")
    table.add_column("reason", overflow="fold", min_width=30)
    for v in report.verdicts:
        outcome = f"[{style.get(v.outcome, '')}]{v.outcome}[/]"
        table.add_row(
            v.model,
            v.config,
            v.check,
            fmt.value(v, v.baseline),
            fmt.value(v, v.current),
            fmt.ratio(v),
            fmt.limit(v),
            fmt.evidence(v),
            outcome,
            v.reason,
        )
    return table


def _render(report: GateReport, err: Any) -> None:
    print_tables(gate_table(report))
    for note in report.notes:
        err.print(f"note: {note}", highlight=False, soft_wrap=True)
    if report.count("inconclusive") and not report.fail_on_inconclusive:
        err.print(
            "[yellow]warning[/]: inconclusive latency checks pass; --fail-on-inconclusive makes them fail",
            highlight=False,
            soft_wrap=True,
        )
    colour = "red" if report.exit_code else "green"
    err.print(f"[{colour}]{report.headline()}[/]", highlight=False, soft_wrap=True)
