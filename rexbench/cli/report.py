"""`rexbench report`: paper vs measured for one machine; hardware comparison across machines."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from rexbench.cli.common import console, load_records, print_json, print_tables
from rexbench.cli.options import RUNS, JsonOpt, PathsArg
from rexbench.errors import RexbenchError


class FigureFormat(str, Enum):
    png = "png"
    svg = "svg"


ReferenceOpt = Annotated[
    str | None,
    typer.Option(
        "--reference",
        help="Reference machine of the hardware comparison: a machine id, a unique part of one, or "
        "a folder holding one machine's records (default: the first machine given).",
        show_default=False,
    ),
]
AllowMismatchOpt = Annotated[
    bool,
    typer.Option(
        "--allow-mismatch",
        help="Compare records whose settings differ (batch, dtype, resolution, config); the report "
        "lists the differences.",
    ),
]
ReportOutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Folder for report.md, report.html (self-contained) and figure3.png.",
        show_default=False,
    ),
]
FigureFormatOpt = Annotated[
    FigureFormat,
    typer.Option("--figure-format", help="Figure 3 as PNG (base64 in the HTML) or SVG (inline)."),
]
NoFigureOpt = Annotated[bool, typer.Option("--no-figure", help="Leave Figure 3 out of --out.")]


def _reference(reference: str | None) -> str | None:
    """A folder given as --reference stands for the one machine whose records it holds."""
    if reference is None or not Path(reference).exists():
        return reference
    from rexbench.records.schema import Record

    machines = list(Record.by_machine(load_records([Path(reference)])))
    if len(machines) != 1:
        found = ", ".join(machines) or "none"
        raise RexbenchError(
            f"--reference {reference}: a folder must hold the records of exactly one machine (found {found})"
        )
    return machines[0]


def report(
    paths: PathsArg = None,
    reference: ReferenceOpt = None,
    allow_mismatch: AllowMismatchOpt = False,
    out: ReportOutOpt = None,
    figure_format: FigureFormatOpt = FigureFormat.png,
    no_figure: NoFigureOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Paper vs measured (params, FLOPs, latency, the paper's speed claims) and, for result folders
    of several machines, latency per machine, speed vs a reference machine and ranking changes."""
    from rexbench.report import paper as rep
    from rexbench.report.render import to_rich

    given = paths or [RUNS]
    records = load_records(paths)
    doc = rep.build(
        records,
        reference=_reference(reference),
        allow_mismatch=allow_mismatch,
        sources=[str(p) for p in given],
    )
    written = {}
    if out is not None:
        written = rep.write(
            doc, out, records, figure=not no_figure, figure_format=figure_format.value
        )
    if json_output:
        print_json({**doc.to_dict(), "written": {k: str(v) for k, v in written.items()}})
        return
    print_tables(*to_rich(doc))
    for kind, path in written.items():
        console().print(f"wrote {kind}: {path}", markup=False, soft_wrap=True)
