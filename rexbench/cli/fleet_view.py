"""`rexbench sweep --cluster`: the fleet sweep (rexbench.fleet.sweep) with one progress line per node
on stderr, a summary table per node, and one line per failure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexbench.cli.common import console, print_json, print_tables
from rexbench.cli.progress import LiveView
from rexbench.fleet.sweep import Hooks

if TYPE_CHECKING:
    from rexbench.cli.options import MeasureOptions
    from rexbench.fleet.sweep import FleetResult, NodeRun
    from rexbench.measure.config import RunConfig
    from rexbench.measure.run.rounds import ProfileEvent
    from rexbench.measure.run.sweep import PlanItem
    from rexbench.measure.run.workers import Isolation

NodesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--nodes",
        help="With --cluster: only the nodes carrying this Ray label, KEY=VALUE (repeatable or "
        "comma-separated; set with `ray start --labels KEY=VALUE`). Default: every node.",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class FleetArgs:
    """What `rexbench sweep` passes on when --cluster is given."""

    cluster: str
    nodes: list[str] | None
    out: Path
    force: bool
    dry_run: bool
    json_out: bool
    isolation: Isolation | None = None  # how each node keeps the configurations apart


class FleetView(LiveView, Hooks):
    """One line per node: models done of those its machine had to measure, the current model and
    phase. Redrawn from the driver's loop (at most twice a second), never on a timer."""

    def __init__(self, err: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
        ]
        super().__init__(err, columns)
        self.tasks: dict[str, Any] = {}

    def planned(self, runs: Sequence[NodeRun]) -> None:
        for run in runs:
            label = f"{run.node.name} ({run.machine_id})"
            status = run.lost or ("nothing to measure" if not run.planned else "waiting")
            self.tasks[run.node.node_id] = self.progress.add_task(
                label, total=max(run.planned, 1), status=status
            )
        self.redraw(force=True)

    def started(self, run: NodeRun, item: PlanItem) -> None:
        self._status(run, f"{item.spec}: starting", force=True)

    def event(self, run: NodeRun, event: ProfileEvent) -> None:
        what = f"{event.phase} {event.item}" if event.item else event.phase
        if event.phase in ("warmup", "timing") and event.total:
            what += f" {event.done}/{event.total}"
        self._status(run, f"{event.model}: {what}", force=False)

    def finished(self, run: NodeRun, item: PlanItem, error: str | None) -> None:
        task = self.tasks[run.node.node_id]
        if error is None and run.lost is None:
            self.progress.advance(task)
        status = run.lost or (f"{item.spec}: failed" if error else f"{item.spec}: done")
        self._status(run, status, force=True)

    def _status(self, run: NodeRun, text: str, force: bool) -> None:
        self.progress.update(self.tasks[run.node.node_id], status=text)
        self.redraw(force)


def sweep_on_cluster(
    specs: list[str], configs: list[RunConfig], measure: MeasureOptions, args: FleetArgs
) -> None:
    """Connect, choose the nodes, run (or preview) the fleet sweep, render it; exit 1 on failures,
    130 when interrupted."""
    from rexbench.fleet import cluster as fc
    from rexbench.fleet import sweep as fs

    err = console(stderr=True)
    selector = fc.parse_selector(args.nodes)
    with fc.connect(args.cluster) as ray:
        nodes = fc.select(fc.alive_nodes(ray), selector)
        err.print(
            f"fleet sweep of {len(specs)} model(s) x {len(configs)} configuration(s) on "
            f"{len(nodes)} node(s): {', '.join(n.name for n in nodes)}",
            highlight=False,
            soft_wrap=True,
        )
        if args.dry_run:
            plans = fs.preview(ray, nodes, specs, configs, out=args.out, force=args.force)
            _preview(plans, args.json_out)
            return
        options = {"runs": measure.runs, "warmup": measure.warmup}
        if measure.input_shape is not None:
            options["input_shape"] = measure.input_shape
        if args.isolation is not None:  # each node runs the same worker processes
            options["isolation"] = args.isolation
        with FleetView(err) as view:
            result = fs.run_fleet(
                ray, nodes, specs, configs, out=args.out, force=args.force, hooks=view, **options
            )
    _finish(result, args, err)


def _preview(machines: list[dict[str, Any]], json_out: bool) -> None:
    if json_out:
        print_json({"machines": machines})
        return
    for m in machines:
        if "lost" in m:
            console().print(f"{m['node']}: unusable: {m['lost']}", markup=False, soft_wrap=True)
            continue
        console().print(
            f"{m['machine_id']} ({', '.join(m['nodes'])}): would measure {len(m['measure'])}: "
            f"{', '.join(m['measure']) or '-'}; already measured {len(m['skip'])}",
            markup=False,
            soft_wrap=True,
        )


def summary_table(result: FleetResult) -> Any:
    from rich.table import Table

    table = Table(title="rexbench sweep --cluster", title_justify="left")
    table.add_column("node", no_wrap=True)
    table.add_column("machine id", no_wrap=True)
    for name in ("written", "skipped", "failed"):
        table.add_column(name, justify="right")
    table.add_column("status")
    for run in result.runs:
        r = run.result
        status = "lost" if run.lost else ("interrupted" if result.interrupted else "done")
        skipped = sum(len(i.done) for i in r.skipped)
        cells = [run.node.name, run.machine_id, len(r.paths), skipped, len(r.failed), status]
        table.add_row(*map(str, cells))
    return table


def failure_lines(result: FleetResult) -> list[str]:
    """One line per failed model, per lost node, per model left unmeasured."""
    lines = []
    for run in result.runs:
        where = f"{run.node.name} ({run.machine_id})"
        lines += [f"failed: {where}: {model}: {error}" for model, error in run.result.failed]
        if run.lost and not run.result.failed:
            lines.append(f"lost: {where}: {run.lost}")
        if run.unmeasured:
            lines.append(
                f"not measured on {run.machine_id}: {', '.join(run.unmeasured)} (no node of it "
                "left; run the same command again to resume)"
            )
    return lines


def results_tables(result: FleetResult) -> list[Any]:
    """Per node, the table a local sweep prints (rexbench.cli.outcome.sweep_table): every model and
    configuration it measured or found already measured, with its median, or its failure."""
    from rexbench.cli.outcome import sweep_table

    tables = []
    for run in result.runs:
        table = sweep_table(run.result.to_dict())
        table.title = f"{run.node.name} ({run.machine_id})"
        if table.row_count:
            tables.append(table)
    return tables


def _finish(result: FleetResult, args: FleetArgs, err: Any) -> None:
    if args.json_out:
        print_json(result.to_dict())
    else:
        print_tables(summary_table(result), *results_tables(result))
    for note in result.notes:
        err.print(f"note: {note}", markup=False, soft_wrap=True)
    for line in failure_lines(result):
        err.print(line, markup=False, soft_wrap=True)
    if result.interrupted:
        kept = sum(len(r.result.paths) for r in result.runs)
        err.print(
            f"interrupted: remote tasks cancelled; {kept} finished record(s) kept in {args.out}; "
            "run the same command again to resume",
            markup=False,
        )
        raise typer.Exit(130)
    err.print(f"next: rexbench report {args.out}", markup=False)
    if result.failed:
        raise typer.Exit(1)
