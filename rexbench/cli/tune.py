"""`rexbench tune`: search every way of running a model on this machine, with what each costs in
fidelity, and say how to deploy the fastest faithful one (rexbench.tune)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexbench.cli.common import console, print_json, print_tables
from rexbench.cli.errors import Terminated
from rexbench.cli.options import RUNS, JsonOpt, OutOpt, WeightsOpt

if TYPE_CHECKING:
    from rich.table import Table


class Objective(str, Enum):  # rexbench.tune.space.OBJECTIVES
    latency = "latency"
    throughput = "throughput"


def _axis(option: str, text: str, metavar: str = "<names>") -> Any:
    """A repeatable option that narrows one axis of the search (comma-separated values too)."""
    return Annotated[
        list[str] | None, typer.Option(option, help=text, metavar=metavar, show_default=False)
    ]


ModelArg = Annotated[
    str, typer.Argument(help="The model: a name, alias or spec (see `rexbench models`).")
]
BudgetOpt = Annotated[
    str, typer.Option("--budget", help="Time for the whole search, kept within 10%: 10m, 90s, 1h.")
]
ObjectiveOpt = Annotated[
    Objective,
    typer.Option(
        "--objective",
        help="latency (per call, batch 1) or throughput (per image, over batch sizes).",
    ),
]
MinAgreementOpt = Annotated[
    float,
    typer.Option(
        "--min-agreement",
        help="Least top-1 agreement with eager fp32 on the evaluation photographs that the "
        "recommendation may have (with trained weights; random weights: the output check judges).",
    ),
]
ConfigAxis = _axis(
    "--config",
    "Presets to search, repeatable or comma-separated (default: every preset of every backend "
    "installed).",
)
ThreadsAxis = _axis(
    "--threads", "Thread counts (default: 1, 2, 4 ... up to the usable cores).", "<counts>"
)
DtypeAxis = _axis(
    "--dtype", "Dtypes (default: each one a backend lists that this machine runs natively)."
)
LayoutAxis = _axis("--layout", "PyTorch layouts: nhwc (channels-last), nchw (default: both).")
AllocatorAxis = _axis(
    "--allocator",
    "Worker allocators: steady, system, jemalloc, tcmalloc (default: each installed).",
)
BatchAxis = _axis(
    "--batch-size", "Batch sizes (default 1; with --objective throughput 1, 4, 16).", "<sizes>"
)
FullRunsOpt = Annotated[
    int, typer.Option("--runs", help="Timed calls of each finalist, at most (the budget decides).")
]
SnippetOpt = Annotated[
    Path | None,
    typer.Option(
        "--snippet",
        help="The deploy snippet's file (default: OUT/tune/MODEL.py).",
        show_default=False,
    ),
]
FigureOpt = Annotated[
    Path | None,
    typer.Option(
        "--figure",
        help="The figure's file, .png, .svg or .pdf (default: OUT/tune/MODEL.png).",
        show_default=False,
    ),
]


def tune(
    ctx: typer.Context,
    model: ModelArg,
    budget: BudgetOpt = "10m",
    objective: ObjectiveOpt = Objective.latency,
    min_agreement: MinAgreementOpt = 0.99,
    config: ConfigAxis = None,
    threads: ThreadsAxis = None,
    dtype: DtypeAxis = None,
    layout: LayoutAxis = None,
    allocator: AllocatorAxis = None,
    batch_size: BatchAxis = None,
    weights: WeightsOpt = None,
    runs: FullRunsOpt = 1000,
    out: OutOpt = RUNS,
    snippet: SnippetOpt = None,
    figure: FigureOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Find the fastest way to run a model on this machine, and what it costs in fidelity.

    Candidates: every backend preset installed x threads x dtype x layout x allocator (x batch size with --objective throughput). Successive halving within --budget: every candidate is screened briefly, each in a worker process of its own, the better half is measured twice as long, and so on; the finalists are measured in full and their records written to --out. Each configuration's fidelity against eager fp32 (top-1 agreement, top-5 overlap, relative L2) is measured on photographs shipped with scikit-image. Prints every candidate, the Pareto front of latency against top-1 agreement and the recommendation under --min-agreement, draws them, and writes a runnable file that deploys the winner outside rexbench, which it runs once to confirm its median. Ctrl-C shows the front of what finished and keeps its records.
    """
    from rexbench.measure.backends import artifacts
    from rexbench.measure.run.parts import REAL
    from rexbench.tune import tuning

    parts = ctx.obj or REAL  # what rexbench.cli.run was given (tests: a fast anchor)
    axes = {
        "configs": config,
        "threads": threads,
        "dtypes": dtype,
        "layouts": layout,
        "allocators": allocator,
        "batch_sizes": batch_size,
    }
    given = tuning.Inputs(
        model=model,
        budget=budget,
        objective=objective.value,
        min_agreement=min_agreement,
        axes=axes,
        weights=None if weights is None else str(weights),
        runs=runs,
        out=out,
        snippet=snippet,
        figure=figure,
    )
    plan = tuning.plan(given, in_process=parts is not REAL)
    err = console(stderr=True)
    say = (lambda text: err.print(text, highlight=False, markup=False)) if err.is_terminal else None
    search = tuning.new_search(plan, parts, say)
    with artifacts.kept():  # the graphs built in the search, reused by the deploy snippet's check
        try:
            search.run(reserve=tuning.reserve)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (rexbench.cli.errors.Terminated)
            _show(tuning.outcome(plan, search, interrupted=True), json_out)
            err.print(
                f"interrupted: {len(search.records)} finished record(s) kept", highlight=False
            )
            raise typer.Exit(143 if isinstance(exc, Terminated) else 130) from None
        if say is not None:
            say(f"[{plan.budget.elapsed():4.0f} s] the search is done; checking the deploy snippet")
        _show(tuning.outcome(plan, search), json_out)


def _show(data: dict[str, Any], json_out: bool) -> None:
    if json_out:
        print_json(data)
        return
    out = console()
    print_tables(render(data), out=out)
    for s in data["skipped"]:
        out.print(f"skipped {s['what']}: {s['reason']}", highlight=False, markup=False)
    out.print(front_text(data), highlight=False, markup=False)
    for line in data["notes"]:
        out.print(line, highlight=False, markup=False)
    if data["figure"]:
        out.print(f"figure: {data['figure']}", highlight=False, markup=False)
    if data["records"]:
        where = Path(data["records"][0]).parent
        out.print(f"{len(data['records'])} finalist record(s) in {where}", highlight=False)


def front_text(data: dict[str, Any]) -> str:
    """The Pareto front on one line, fastest first."""
    unit = "ms" if data["objective"] == "latency" else "ms/image"
    points = [
        f"{p['candidate']} ({p['ms']:.3f} {unit}, top-1 {p['top1_agreement']:.3f})"
        for p in data["front"]
    ]
    body = " > ".join(points) if points else "nothing timed with a fidelity yet"
    return f"Pareto front, {data['objective']} against top-1 agreement: {body}"


def render(data: dict[str, Any]) -> Table:
    """One row per candidate: its last rung, median and CI, fidelity, status."""
    from rich import box
    from rich.table import Table

    throughput = data["objective"] == "throughput"
    table = Table(
        title=f"rexbench tune {data['model']}",
        box=box.SIMPLE_HEAD,
        padding=(0, 0, 0, 1),
        pad_edge=False,
        show_edge=False,
        title_justify="left",
    )
    headers = [
        "candidate",
        "rung",
        "runs",
        "median\nms",
        "95% CI\nms",
        *(["img/s"] if throughput else []),
        "top-1\nagree",
        "top-5\noverlap",
        "rel L2",
        "status",
    ]
    for name in headers:
        table.add_column(name, justify="left" if name in ("candidate", "status") else "right")
    for r in data["candidates"]:
        fid = r["fidelity"] or {}
        status = r["status"] + (f": {r['reason']}" if r["reason"] else "")
        cells = [
            r["candidate"],
            "-" if r["rung"] is None else str(r["rung"]),
            str(r["runs"]) if r["runs"] else "-",
            _num(r["median_ms"], 3),
            "-" if r["ci_low_ms"] is None else f"{r['ci_low_ms']:.3f}-{r['ci_high_ms']:.3f}",
            *([_num(r["images_per_s"], 1)] if throughput else []),
            _num(fid.get("top1_agreement"), 3),
            _num(fid.get("top5_overlap"), 3),
            "-" if fid.get("rel_l2") is None else f"{fid['rel_l2']:.1e}",
            f"[bold]{status}[/]" if r["status"] == "winner" else status,
        ]
        table.add_row(*cells)
    return table


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
