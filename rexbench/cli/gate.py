"""`rexbench gate`: compare models now against their baselines; exit 0 pass, 1 regression, 2 error.

The rules are in rexbench.gate.checks (checks, the latency rule), the pairing in rexbench.gate.evaluate, the
pyproject.toml settings in rexbench.gate.config, the Markdown summary in rexbench.gate.report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexbench.cli.baseline import AllOpt, OptionalModelsArg, print_wide, specs_for
from rexbench.cli.common import JsonOpt, console, print_json
from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    from rexbench.gate.evaluate import GateOptions
    from rexbench.gate.report import GateReport
    from rexbench.records.schema import Record

BaselineOpt = Annotated[
    Path | None,
    typer.Option(
        "--baseline",
        help="Baselines folder (default: \\[tool.rexbench.gate] baseline, else baselines/).",
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
        "latency.p90:+20%, throughput:-10%. Replaces a default on the same metric.",
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
SummaryOpt = Annotated[
    Path | None,
    typer.Option(
        "--summary",
        help="Append a Markdown summary to this file (e.g. $GITHUB_STEP_SUMMARY).",
        show_default=False,
    ),
]
RunsOpt = Annotated[
    int | None,
    typer.Option(
        "--runs",
        help="Timed calls when re-measuring (default: the baseline's).",
        show_default=False,
    ),
]
WarmupOpt = Annotated[
    int | None,
    typer.Option(
        "--warmup", help="Untimed calls first (default: the baseline's).", show_default=False
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
    runs: RunsOpt = None,
    warmup: WarmupOpt = None,
    json_out: JsonOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """Check models against their baselines: counts exactly, latency with threshold + significance.

    Without --from, each model is re-measured with its baseline's configurations on this machine.
    Exit codes: 0 pass (inconclusive warns), 1 regression, 2 usage or configuration error.
    """
    from rexbench.gate import checks as rules
    from rexbench.gate.config import load_config
    from rexbench.gate.evaluate import MAX_LOAD_PER_CORE, GateOptions
    from rexbench.gate.report import GateReport
    from rexbench.records.store import read_counts

    cfg = load_config()
    checks = rules.merge_checks(rules.DEFAULT_CHECKS, cfg.checks, check or [])
    options = GateOptions(
        tuple(checks),
        alpha=cfg.alpha if cfg.alpha is not None else rules.ALPHA,
        require_same_source=require_same_source or cfg.require_same_source,
        max_load_per_core=(
            cfg.max_load_per_core if cfg.max_load_per_core is not None else MAX_LOAD_PER_CORE
        ),
    )
    root = baseline or cfg.baseline or Path("baselines")
    if all_models or models:
        specs = [str(s) for s in specs_for(models, all_models)]
    elif cfg.models and not from_:
        specs = [str(s) for s in specs_for(list(cfg.models), False)]
    else:
        specs = []
    if not specs and not from_:
        raise RexbenchError(
            "give MODEL..., --all, --from RECORDS, or models = [...] in [tool.rexbench.gate] of pyproject.toml"
        )
    counts = read_counts(root, missing_ok=not counts_only)
    err = console(stderr=True)
    if counts_only:
        verdicts, notes = _counts_gate(specs, counts, root, options, err)
    else:
        runs, warmup = (
            runs if runs is not None else cfg.runs,
            warmup if warmup is not None else cfg.warmup,
        )
        verdicts, notes = _full_gate(specs, from_, counts, root, options, runs, warmup, err)
    report = GateReport(
        verdicts, notes, strict or cfg.strict, fail_on_inconclusive or cfg.fail_on_inconclusive
    )
    if summary is not None:
        _append_summary(summary, report)
    if json_out:
        print_json(report.to_dict())
    else:
        _render(report, err)
    raise typer.Exit(report.exit_code)


def _counts_gate(
    specs: list[str], counts: dict[str, Any], root: Path, options: GateOptions, err: Any
) -> tuple[list, list[str]]:
    from rexbench.gate.baseline import count_entry
    from rexbench.gate.evaluate import evaluate_model
    from rexbench.records.store import counts_path
    from rexbench.spec import parse

    missing = [s for s in specs if s not in counts]
    if missing:
        raise RexbenchError(
            f"no counts baseline for {', '.join(missing)} in {counts_path(root)}: add with "
            f"`rexbench baseline save --counts-only {' '.join(missing)}`"
        )
    verdicts, notes = [], []
    with err.status("counting") as status:
        for spec in specs:
            status.update(f"counting {spec}")
            now = count_entry(parse(spec), _entry_shapes(counts[spec]))
            more, why = evaluate_model(
                spec, options, counts_baseline=counts[spec], counts_now=now, counts_only=True
            )
            verdicts += more
            notes += why
    return verdicts, notes


def _entry_shapes(entry: dict[str, Any]) -> list[tuple[int, int, int]]:
    """The inputs a counts entry holds (its own `resolution` / `input_shape` first, then every
    `macs_conv@K`), to count now at the same ones (a model without a default input needs them)."""
    from rexbench.models.shapes import parse_input_shape

    own = entry.get("input_shape") or entry.get("resolution")
    keys = {k.partition("@")[2] for k in entry if "@" in k}
    shapes = [parse_input_shape(str(own))] if own else []
    return shapes + [parse_input_shape(k) for k in sorted(keys)]


def _full_gate(
    specs: list[str],
    from_: list[Path] | None,
    counts: dict[str, Any],
    root: Path,
    options: GateOptions,
    runs: int | None,
    warmup: int | None,
    err: Any,
) -> tuple[list, list[str]]:
    from rexbench.gate.baseline import baselines_of, count_entry, load_baselines
    from rexbench.gate.evaluate import evaluate_model, refuse_changed_source
    from rexbench.spec import parse

    baselines = load_baselines(root)
    current: dict[str, list[Record]] = {}
    if from_:
        from rexbench.records.store import load_records

        for record in load_records(from_):
            if not specs or record.model.spec in specs:
                current.setdefault(record.model.spec, []).append(record)
        specs = specs or list(current)
        if not current:
            raise RexbenchError(f"no records of {', '.join(specs)} in {', '.join(map(str, from_))}")
    machine, fingerprint = None, None
    verdicts, notes = [], []
    for spec in specs:
        known = [b for b in baselines if b.model.spec == spec]
        if not known and spec not in counts:
            raise RexbenchError(
                f"no baseline for {spec} under {root}: create one with `rexbench baseline save {spec}`"
            )
        other: list[str] = []
        counts_now = None
        if not from_:
            if options.require_same_source:  # refused before a long measurement, not after
                refuse_changed_source(spec, known, counts.get(spec))
            if machine is None:
                from rexbench.measure.env import fingerprint as fp

                fingerprint = fp()
                machine = fingerprint["machine_id"]
            mine, others = baselines_of(spec, baselines, machine)
            if mine and options.latency_checks:
                err.print(
                    f"measuring {spec} like its baseline ({len(mine)} configuration(s))",
                    highlight=False,
                    soft_wrap=True,
                )
                current[spec] = _measure(spec, mine, runs, warmup, err)
            elif others:
                from rexbench.measure.env import differences

                other = differences(others[0].env, fingerprint)
        if not current.get(spec):  # count now, at the inputs of the baseline
            shapes = _entry_shapes(counts[spec]) if spec in counts else []
            shapes += [b.counts["input_shape"] for b in known if b.counts.get("input_shape")]
            counts_now = count_entry(parse(spec), shapes)
        more, why = evaluate_model(
            spec,
            options,
            current=current.get(spec, []),
            baselines=baselines,
            counts_baseline=counts.get(spec),
            counts_now=counts_now,
            other_machines=other,
        )
        verdicts += more
        notes += why
    return verdicts, notes


def _measure(
    spec: str, mine: list[Record], runs: int | None, warmup: int | None, err: Any
) -> list[Record]:
    from rexbench.cli.profile import ProgressView
    from rexbench.gate.evaluate import measure_like

    n_runs = runs or max(int(b.run.config.get("runs", 1)) for b in mine)
    n_warm = warmup if warmup is not None else max(int(b.run.config.get("warmup", 0)) for b in mine)
    with ProgressView(err, len({b.run.config_id for b in mine}) + 1, n_runs, n_warm) as view:
        return measure_like(spec, mine, runs=n_runs, warmup=n_warm, progress=view.update)


def _append_summary(path: Path, report: GateReport) -> None:
    from rexbench.gate.report import markdown

    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(markdown(report))
    except OSError as exc:
        raise RexbenchError(f"cannot append the summary to {path}: {exc.strerror or exc}") from None


def _render(report: GateReport, err: Any) -> None:
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
    for name in (
        "model",
        "config",
        "check",
        "baseline",
        "current",
        "ratio",
        "limit",
        "evidence",
        "outcome",
    ):
        table.add_column(
            name,
            no_wrap=True,
            justify="right" if name in ("baseline", "current", "ratio", "limit") else "left",
        )
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
    print_wide(table)
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
