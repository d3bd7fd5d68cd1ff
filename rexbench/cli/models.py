"""`rexbench models`: every built-in model with its exact parameter count and the paper's numbers."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rexbench.cli.common import console, print_json
from rexbench.cli.options import JsonOpt
from rexbench.errors import RexbenchError
from rexbench.paper.tables import published
from rexbench.registry import MODELS, ModelEntry, normalize

FamilyOpt = Annotated[
    str | None,
    typer.Option(
        "--family",
        help="Only this family, case-insensitive (ReXNet, ReXNet-lite, EfficientNet, MobileNet, ...).",
        show_default=False,
    ),
]


def select(family: str | None) -> list[ModelEntry]:
    """The registered entries of `family` (exact family name, else every family it prefixes)."""
    entries = list(MODELS)
    if family is None:
        return entries
    key = normalize(family)
    chosen = [e for e in entries if normalize(e.family) == key] or [
        e for e in entries if key and normalize(e.family).startswith(key)
    ]
    if not chosen:
        known = ", ".join(dict.fromkeys(e.family for e in entries))
        raise RexbenchError(f"unknown model family {family!r}; known: {known}")
    return chosen


def model_row(entry: ModelEntry) -> dict[str, Any]:
    """One model as plain data: the `--json` object and the table row."""
    from rexbench.models.factory import exact_params

    paper = published(entry.name)
    return {
        "name": entry.name,
        "family": entry.family,
        "resolution": entry.resolution,
        "params": exact_params(entry),
        "paper_flops": paper.flops.text if paper and paper.flops else None,
        "paper_params": paper.params.text if paper and paper.params else None,
        "paper_top1": paper.top1.value if paper and paper.top1 else None,
        "paper_table": paper.table if paper else None,
        "aliases": list(entry.aliases),
        "reference": entry.reference,
    }


def _render(rows: list[dict[str, Any]]) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    def cell(value: Any) -> str:
        return "-" if value is None else str(value)

    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        caption="params: exact count of the built model. paper: as printed in the paper's table "
        "(FLOPs = multiply-adds of conv and linear layers). -: not available.",
        caption_justify="left",
    )
    table.add_column("family / model", no_wrap=True)
    table.add_column("res", justify="right", no_wrap=True)
    table.add_column("params", justify="right", no_wrap=True)
    for header in ("FLOPs", "params", "top-1"):
        table.add_column(f"paper\n{header}", justify="right", no_wrap=True)
    table.add_column("paper\ntable", no_wrap=True)
    table.add_column("aliases", overflow="fold")
    family = None
    for r in rows:
        if r["family"] != family:  # one titled section per family keeps the table narrow
            if family is not None:
                table.add_section()
            family = r["family"]
            table.add_row(f"[bold]{escape(family)}[/bold]")
        table.add_row(
            f" {r['name']}",
            str(r["resolution"]),
            "-" if r["params"] is None else f"{r['params']:,}",
            cell(r["paper_flops"]),
            cell(r["paper_params"]),
            "-" if r["paper_top1"] is None else f"{r['paper_top1']:.1f}%",
            cell(r["paper_table"]),
            ", ".join(r["aliases"]) or "-",
        )
    console().print(table)


def models(family: FamilyOpt = None, json_output: JsonOpt = False) -> None:
    """List every built-in model: family, default resolution, exact params, the paper's FLOPs and top-1."""
    rows = [model_row(entry) for entry in select(family)]
    if json_output:
        print_json(rows)
    else:
        _render(rows)
