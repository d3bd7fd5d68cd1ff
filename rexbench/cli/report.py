"""`rexbench report`: paper vs measured for one machine; hardware comparison across machines."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from rexbench.cli.common import console, load_records, print_json, print_tables
from rexbench.cli.options import RUNS, JsonOpt, PathsArg


class FigureFormat(str, Enum):
    png = "png"
    svg = "svg"


ReferenceOpt = Annotated[
    str | None,
    typer.Option(
        "--reference",
        help="Reference machine of the hardware comparison: a machine id, a unique part of one, or "
        "a folder holding one machine's records (default: the first machine given); a folder of "
        "the same machine id as another folder given is compared with it folder by folder.",
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


def _folders(reference: str | None, given: list[Path]) -> tuple[str | None, dict | None]:
    """A --reference folder as named among the folders given, and the records of each folder
    (the reference's included), so that two folders of one machine id can be compared; else
    (reference, None)."""
    from rexbench.records.store import load_records as load
    from rexbench.report.machines import reference_folder

    names = [str(p) for p in given]
    folder = reference_folder(reference, names)
    if folder is None:
        return reference, None
    folders = {name: load([name], skip_bad=True, on_skip=lambda _: None) for name in names}
    if folder not in folders:
        folders[folder] = load([folder], skip_bad=True, on_skip=lambda _: None)
    return folder, folders


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
    reference, folders = _folders(reference, given)
    doc = rep.build(
        records,
        reference=reference,
        allow_mismatch=allow_mismatch,
        sources=[str(p) for p in given],
        folders=folders,
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
