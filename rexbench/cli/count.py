"""`rexbench count`: params and multiply-adds per model, from four counting backends (rexbench.measure.counting.counts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexbench.cli.common import console, print_json, print_tables
from rexbench.cli.options import InputShapeOpt, JsonOpt, ModelsArg, ResolutionOpt, WeightsOpt
from rexbench.cli.progress import working
from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    from rich.table import Table

    from rexbench.measure.counting.counts import Counts, ModuleRow

ByModuleOpt = Annotated[
    bool, typer.Option("--by-module", help="Per-module params, macs_conv and output shape.")
]
DepthOpt = Annotated[
    int, typer.Option("--depth", help="Module depth shown with --by-module (0 = whole model).")
]


def count(
    models: ModelsArg,
    resolution: ResolutionOpt = None,
    input_shape: InputShapeOpt = None,
    by_module: ByModuleOpt = False,
    depth: DepthOpt = 2,
    json_out: JsonOpt = False,
    weights: WeightsOpt = None,
) -> None:
    """Count parameters and multiply-adds (conv+linear, fvcore, thop, torch) of each model."""
    from rexbench.measure.counting import counts as counting
    from rexbench.models.shapes import check_options
    from rexbench.spec import parse

    if weights is not None and len(models) != 1:
        raise RexbenchError("--weights loads one checkpoint: give exactly one model with it")
    if depth < 0:
        raise RexbenchError(f"--depth must be 0 or more, got {depth}")
    specs = [parse(name) for name in models]  # every name checked before any model is built
    for spec in specs:  # and the input options, before anything is built
        check_options(spec, input_shape, resolution)

    err = console(stderr=True)
    if by_module:
        results = []
        for spec in specs:
            with working(err, f"counting {spec} by module"):
                results.append(
                    counting.count_modules(
                        spec, resolution, weights, depth, input_shape=input_shape
                    )
                )
        data = {
            "conventions": counting.CONVENTIONS,
            "models": [
                {
                    "model": name,
                    "input_shape": list(shape),
                    "depth": depth,
                    "modules": [row.to_dict() for row in rows],
                }
                for name, shape, rows in results
            ],
        }
        if json_out:
            print_json(data)
        else:
            for name, shape, rows in results:
                print_tables(_module_table(name, shape, rows))
        return

    all_counts = []
    for spec in specs:
        with working(err, f"counting {spec}"):
            all_counts.append(counting.count(spec, resolution, weights, input_shape=input_shape))
    if json_out:
        print_json(
            {"conventions": counting.CONVENTIONS, "counts": [c.to_dict() for c in all_counts]}
        )
        return
    print_tables(_counts_table(all_counts))
    print_tables(_agreement_table(all_counts))
    print_tables(_skipped_table(all_counts))


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _shape(shape: Any) -> str:
    if shape is None:
        return "-"
    if all(isinstance(d, int) for d in shape):
        return "x".join(map(str, shape))
    return "(" + ", ".join(_shape(s) for s in shape) + ")"


def _table(title: str, caption: str | None = None) -> Table:
    from rich.table import Table

    return Table(title=title, caption=caption, caption_justify="left", title_justify="left")


def _numeric(table: Table, header: str) -> None:
    table.add_column(header, justify="right", no_wrap=True, overflow="fold")


def _counts_table(all_counts: list[Counts]) -> Table:
    from rexbench.measure.counting.counts import CONVENTIONS, NUMBERS

    table = _table("Parameters and multiply-adds", caption=CONVENTIONS)
    table.add_column("model", no_wrap=True)
    table.add_column("input", no_wrap=True)
    for header in NUMBERS:
        _numeric(table, header)
    for c in all_counts:
        table.add_row(c.model, _shape(c.input_shape), *(_num(getattr(c, n)) for n in NUMBERS))
    return table


def _agreement_table(all_counts: list[Counts]) -> Table:
    from rexbench.measure.counting.counts import COUNTERS

    table = _table(
        "Conv + Linear multiply-adds seen by each counter (torch's flops halved)",
        caption="They must agree; the totals above differ only by what else each counter adds.",
    )
    table.add_column("model", no_wrap=True)
    for name in COUNTERS:
        _numeric(table, name)
    table.add_column("agree", justify="center")
    for c in all_counts:
        cells = [_num(c.conv_linear_macs.get(name)) for name in COUNTERS]
        table.add_row(c.model, *cells, "yes" if c.counters_agree else "[bold red]NO[/]")
    return table


def _skipped_table(all_counts: list[Counts]) -> Table:
    from rexbench.measure.counting.counts import COUNTERS

    table = _table(
        "Skipped by each counter (counted as zero there), with occurrences",
        caption="conv: weighted modules outside Conv/Linear/norm layers; fvcore: unsupported ops; "
        "thop: modules without a rule; torch: ops without a flop formula.",
    )
    table.add_column("model", no_wrap=True)
    for name in COUNTERS:
        table.add_column(name)
    for c in all_counts:
        cells = []
        for name in COUNTERS:
            items = c.skipped.get(name)
            if items is None:
                cells.append("-")  # counter not run
            else:
                cells.append("\n".join(f"{op} x{n}" for op, n in items.items()) or "nothing")
        table.add_row(c.model, *cells)
    return table


def _module_table(name: str, shape: tuple[int, ...], rows: list[ModuleRow]) -> Table:
    from rexbench.measure.counting.counts import CONVENTIONS

    table = _table(f"{name} by module, input {_shape(shape)}", caption=CONVENTIONS)
    table.add_column("module", no_wrap=True)
    table.add_column("type", no_wrap=True)
    _numeric(table, "params")
    _numeric(table, "macs_conv")
    table.add_column("output", no_wrap=True)
    for row in rows:
        label = "  " * max(row.depth - 1, 0) + (row.name or "(model)")
        table.add_row(
            label, row.type, _num(row.params), _num(row.macs_conv), _shape(row.output_shape)
        )
    return table
