"""`rexbench history`: a metric across commits, its steps, as a Rich table, a figure and Markdown
(rexbench.report.history)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rexbench.cli.common import console, load_records, print_json, print_wide
from rexbench.cli.options import JsonOpt, OptionalModelsArg
from rexbench.cli.summary import EMPTY_NOTE, SummaryOpt, summary_file

FromOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--from",
        help="Record files or folders of many commits (default runs/, where profile writes; read "
        "recursively).",
        show_default=False,
    ),
]
MetricOpt = Annotated[
    str,
    typer.Option(
        "--metric",
        help="latency.p10, latency.median, latency.mean, latency.pNN, params, macs_conv or instructions.",
    ),
]
PlotOpt = Annotated[
    Path | None,
    typer.Option("--plot", help="Write the figure here (.png, .svg or .pdf).", show_default=False),
]


def history(
    models: OptionalModelsArg = None,
    from_: FromOpt = None,
    metric: MetricOpt = "latency.p10",
    plot: PlotOpt = None,
    summary: SummaryOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show how a metric moved across commits and where it stepped (change points with their size
    and confidence, not every wiggle). Records are ordered by their commit's date."""
    from rexbench.errors import RexbenchError
    from rexbench.figures import check_figure_path
    from rexbench.report import history as hist

    summary_path = summary_file(summary)  # the outputs are checked before anything is read
    if plot is not None:
        check_figure_path(plot, option="--plot")
    series, notes = hist.build_history(load_records(from_), metric, models or ())
    if plot is not None:
        hist.plot(series, plot)
    if summary_path is not None:
        try:
            with summary_path.open("a", encoding="utf-8") as fh:
                fh.write(hist.markdown(series, notes))
        except OSError as exc:
            raise RexbenchError(f"cannot append to {summary}: {exc.strerror or exc}") from None
    elif summary is not None:
        notes = [*notes, EMPTY_NOTE]
    if json_out:
        print_json({"series": [s.to_dict() for s in series], "notes": notes})
        return
    _render(series, notes)
    if plot is not None:
        console(stderr=True).print(f"figure written to {plot}", highlight=False)


def _render(series: list, notes: list[str]) -> None:
    from rich.table import Table

    from rexbench.report.history import format_step, format_value

    err = console(stderr=True)
    if not series:
        err.print("no records with a git commit found", highlight=False)
    for s in series:
        starts = {st.index: st for st in s.steps}
        table = Table(title=f"{s.metric}: {s.title}", caption=f"{len(s.steps)} step(s)")
        for name in ("commit", "date", "value", "step"):
            table.add_column(name, justify="right" if name == "value" else "left", no_wrap=True)
        for i, p in enumerate(s.points):
            step = starts.get(i)
            cell = f"[bold red]{format_step(step, s.metric)}[/]" if step else ""
            table.add_row(p.label, p.date[:19], format_value(s.metric, p.value), cell)
        print_wide(table, max_width=200)
    for note in notes:
        err.print(f"note: {note}", highlight=False, soft_wrap=True)
