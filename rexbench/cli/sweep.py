"""`rexbench sweep`: profile a named set of the paper's models (or given models) with one configuration."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexbench.cli.common import console, print_json, print_tables
from rexbench.cli.fleet_view import FleetArgs, NodesOpt
from rexbench.cli.options import (
    RUNS,
    Allocator,
    AllocatorOpt,
    ClusterOpt,
    InProcessOpt,
    JsonOpt,
    MeasureOptions,
    OutOpt,
    TimeoutOpt,
    isolation,
    measure_options,
)
from rexbench.cli.outcome import AllowMismatchOpt, exit_code, median_ms, sweep_table
from rexbench.cli.progress import SweepView
from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    from rexbench.measure.config import RunConfig
    from rexbench.measure.run.sweep import Batch, PlanItem, SweepResult

NamesArg = Annotated[
    list[str],
    typer.Argument(
        help="Sets (table5, tableA1, tableA2, mobile, all) and/or model names.", show_default=False
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option("--force", help="Measure again models already measured with this configuration."),
]
KeepGoingOpt = Annotated[
    bool,
    typer.Option(
        "--keep-going", help="Go on with the next model when one fails (exit 1 at the end)."
    ),
]
InterleaveOpt = Annotated[
    str,
    typer.Option(
        "--interleave",
        help="Which models are timed in the same interleaved rounds: 'claims' (the models a paper "
        "claim compares, e.g. x2.0 with B3), 'all', or 'none' (one model after the other).",
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would be measured and skipped.")
]


@measure_options()
def sweep(
    names: NamesArg,
    *,
    measure: MeasureOptions,
    out: OutOpt = RUNS,
    force: ForceOpt = False,
    keep_going: KeepGoingOpt = False,
    interleave: InterleaveOpt = "claims",
    allow_mismatch: AllowMismatchOpt = False,
    dry_run: DryRunOpt = False,
    in_process: InProcessOpt = False,
    allocator: AllocatorOpt = Allocator.steady,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    cluster: ClusterOpt = None,
    nodes: NodesOpt = None,
) -> None:
    """Profile a set of the paper's models (table5, tableA1, tableA2, mobile, all) with one configuration.

    Resumable: a model already in --out with the identical configuration is skipped (--force measures it again). Ctrl-C keeps every finished model (exit 130). The models a paper claim compares are timed together (--interleave): one already measured is measured again beside the other into a record of its own, and its stored record is kept. A configuration whose output differs from the eager fp32 model's is recorded as invalid and the sweep exits 1 (unless --allow-mismatch).
    With --cluster, every node (or those --nodes picks) runs the sweep; records land here, under <out>/<machine-id>/ of the node that measured them.
    """
    from rexbench.measure.config import build_configs
    from rexbench.measure.run import sweep as sw
    from rexbench.measure.run.profile import with_input_shape

    specs = sw.expand(names)
    configs, note = build_configs(measure.config_options())
    # the shape is part of each config (and of its config_id) before the plan looks for records
    configs = [with_input_shape(c, measure.input_shape) for c in configs]
    kept_apart = isolation(in_process, allocator, timeout)
    if cluster is not None:  # rexbench.fleet: the nodes check their devices themselves
        from rexbench.cli.fleet_view import sweep_on_cluster

        args = FleetArgs(
            cluster=cluster,
            nodes=nodes,
            out=out,
            force=force,
            dry_run=dry_run,
            json_out=json_out,
            isolation=kept_apart,
        )
        sweep_on_cluster(specs, configs, measure, args)
        return
    if nodes:
        raise RexbenchError("--nodes picks nodes of a cluster: give --cluster too")
    err = console(stderr=True)
    skipped: list[str] = []
    if not dry_run:  # what this machine cannot run fails once, before any model or output
        configs, skipped = _check_here(specs, configs, out)
    for line in skipped:  # a precision this machine cannot run: the others are measured
        err.print(f"skipped: {line}", markup=False, highlight=False)
    sw.groups([], interleave)  # an unknown --interleave fails before anything is measured
    items = sw.plan(specs, configs, out, force=force)
    batches = sw.batches(items, interleave)
    note = f"sweep of {len(specs)} model(s); {note}; {kept_apart.describe()}"
    _announce(items, batches, note, out, err)
    if dry_run:
        _dry_run(specs, batches, json_out)
        return
    measuring = sum(len(b.items) for b in batches)
    runs, warmup = measure.runs, measure.warmup
    with SweepView(err, measuring, len(configs) + 1, runs, warmup) as view:
        result = sw.run(
            items,
            out,
            keep_going=keep_going,
            interleave=interleave,
            on_model=view.next_model,
            runs=runs,
            warmup=warmup,
            input_shape=measure.input_shape,
            progress=view.update,
            isolation=kept_apart,
        )
    _finish(result, out, json_out, err)
    code = max(exit_code(err, result.records, [], allow_mismatch), 1 if result.failed else 0)
    if code:
        raise typer.Exit(code)


def _check_here(
    specs: list[str], configs: list[RunConfig], out: Path
) -> tuple[list[RunConfig], list[str]]:
    """What this machine lacks (every missing package in one line), then everything else a sweep
    can refuse before it measures (rexbench.measure.run.sweep.check): the configurations it can
    run, and a line for each precision it cannot (skipped)."""
    from rexbench.measure.run import sweep as sw
    from rexbench.measure.run.installed import check_installed
    from rexbench.spec import parse

    check_installed(configs, [parse(s) for s in specs])
    return sw.check(specs, configs, out)


def _announce(items: list[PlanItem], batches: list[Batch], line: str, out: Path, err: Any) -> None:
    """What the sweep is, the models it skips as already measured, and the stored records it
    measures again beside models still to measure (kept; the new records get files of their own)."""
    again = {r.key for b in batches for r in b.again}
    skipped = [
        f"{i.spec} ({', '.join(r.run.label for r in i.done if r.key not in again)})"
        for i in items
        if any(r.key not in again for r in i.done)
    ]
    err.print(line, highlight=False)
    if skipped:
        err.print(
            f"skipping {len(skipped)} already measured in {out} (--force to measure again): "
            + ", ".join(skipped),
            highlight=False,
        )
    pairs = [
        f"{r.model.spec} ({r.run.label}) with {', '.join(i.spec for i in b.items if i.todo)}"
        for b in batches
        for r in b.again
    ]
    if pairs:
        err.print(
            f"measuring again {len(pairs)} already measured, timed in the same rounds as models "
            f"still to measure (--interleave): {'; '.join(pairs)}; the records in {out} are kept "
            "and the new ones get files of their own",
            highlight=False,
        )


def _dry_run(specs: list[str], batches: list[Batch], json_out: bool) -> None:
    measured = {i.spec for b in batches for i in b.items}
    data = {
        "models": specs,
        "measure": [s for s in specs if s in measured],
        "again": [f"{r.model.spec} ({r.run.label})" for b in batches for r in b.again],
        "skip": [s for s in specs if s not in measured],
    }
    if json_out:
        print_json(data)
    else:
        console().print(
            f"would measure {len(data['measure'])}: {', '.join(data['measure']) or '-'}",
            highlight=False,
            soft_wrap=True,
        )


def _finish(result: SweepResult, out: Path, json_out: bool, err: Any) -> None:
    data = result.to_dict()
    if json_out:
        print_json(data)
    else:
        print_tables(sweep_table(data))
    for row in data["kept"]:
        err.print(
            f"kept: the stored record of {row['model']} ({row['config']}, {median_ms(row)} ms) is unchanged "
            "beside this sweep's; report and plot take the newest",
            highlight=False,
        )
    for model, error in result.failed:
        err.print(
            f"failed: {error if error.startswith(model) else f'{model}: {error}'}", markup=False
        )
    if result.interrupted:
        err.print(
            f"interrupted: {len(result.paths)} finished record(s) kept in {out}; run the same command "
            "again to resume",
            highlight=False,
        )
        raise typer.Exit(130)
    err.print(
        f"next: rexbench report {out} --out {out}/report   and   rexbench plot {out} --out {out}/figure3.png",
        highlight=False,
        markup=False,
    )
