"""`rexbench plot`: the paper's Figure 3 (top-1 vs FLOPs, CPU latency, GPU latency) from records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rexbench.cli.common import console, load_records, print_json
from rexbench.cli.options import RUNS, JsonOpt, PathsArg
from rexbench.errors import RexbenchError
from rexbench.spec import split_values

FigureOutOpt = Annotated[
    Path,
    typer.Option(
        "--out", "-o", help="Figure file: .png, .svg or .pdf (default: runs/figure3.png)."
    ),
]
XOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--x",
        help="Other x axes: 'params' instead of FLOPs, 'throughput' (images/s) instead of latency; "
        "comma-separated or repeated.",
        show_default=False,
    ),
]
FamilyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--family",
        help="Families to draw, repeatable (default: ReXNet and EfficientNet, as the paper).",
        show_default=False,
    ),
]
AllFamiliesOpt = Annotated[
    bool, typer.Option("--all-families", help="Draw every family that has records.")
]
PaperOpt = Annotated[
    bool,
    typer.Option(
        "--paper", help="Overlay the paper's own numbers as hollow markers (its hardware)."
    ),
]
PlotConfigOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration(s) to draw, repeatable or comma-separated, e.g. --config ort for ONNX "
        "Runtime alone or --config max,ort,openvino to overlay them (default: all measured).",
        show_default=False,
    ),
]
Top1Opt = Annotated[
    list[str] | None,
    typer.Option(
        "--top1",
        help="SPEC=PCT: top-1 (%) of a model the paper has no number for, repeatable, e.g. "
        "--top1 torchvision:resnet50=76.13 (its records are left out without one).",
        show_default=False,
    ),
]


def _check_families(families: list[str]) -> None:
    from rexbench.registry import MODELS

    known = list(dict.fromkeys(e.family for e in MODELS)) + ["timm", "torchvision", "py"]
    for name in families:
        if name.lower() not in {k.lower() for k in known}:
            raise RexbenchError(f"--family {name!r}: unknown; choose from {', '.join(known)}")


def plot(
    paths: PathsArg = None,
    out: FigureOutOpt = RUNS / "figure3.png",
    x: XOpt = None,
    family: FamilyOpt = None,
    all_families: AllFamiliesOpt = False,
    paper: PaperOpt = False,
    top1: Top1Opt = None,
    config: PlotConfigOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Draw the paper's Figure 3 from measured records: top-1 (published) vs FLOPs, CPU and GPU latency."""
    from rexbench.figures import check_figure_path
    from rexbench.records.schema import Record
    from rexbench.report.figure3 import DEFAULT_FAMILIES, figure3, parse_axes, parse_top1, summary

    parse_axes(x)  # bad --x values fail before anything is loaded
    accuracy = parse_top1(top1)
    _check_families(family or [])
    check_figure_path(out)
    records = load_records(paths)
    families = None if all_families else (family or DEFAULT_FAMILIES)
    configs = split_values(config) or None
    if configs is not None:
        measured = sorted({r.run.label for r in records})
        unknown = [c for c in configs if c not in measured]
        if unknown:
            raise RexbenchError(
                f"--config {', '.join(unknown)}: no such configuration in the records "
                f"(measured: {', '.join(measured) or 'none'})"
            )
    fig = figure3(records, out, x=x, families=families, paper=paper, top1=accuracy, configs=configs)
    machines = Record.by_machine(records)
    data = {"figure": str(out), "records": len(records), "machines": list(machines), **summary(fig)}
    if json_output:
        print_json(data)
        return
    panels = ", ".join(f"{p['title']} ({len(p['lines'])} lines)" for p in data["panels"])
    console().print(
        f"wrote {out}: {panels}; {len(records)} record(s) from {len(machines)} machine(s)",
        markup=False,
        soft_wrap=True,
    )
