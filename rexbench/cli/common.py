"""Output helpers shared by the CLI commands: consoles, JSON, wide tables, records with warnings."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from rexbench.records.schema import Record


def console(stderr: bool = False) -> Console:
    """A Rich console; created on demand so that importing the CLI stays cheap."""
    from rich.console import Console

    return Console(stderr=stderr)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def print_wide(*renderables: Any, out: Console | None = None, max_width: int | None = None) -> None:
    """Print on stdout (or `out`). When it is not a terminal (a file, a pipe, a CI log), the page is
    first widened to each table's natural width (at most `max_width`), so that no number or name in
    a table is cut or wrapped; text wraps at the page width."""
    from rich.measure import Measurement
    from rich.table import Table

    out = out if out is not None else console()
    for item in renderables:
        if isinstance(item, Table) and not out.is_terminal:
            needed = Measurement.get(out, out.options.update_width(10**5), item).maximum
            out.width = max(out.width, needed if max_width is None else min(needed, max_width))
        out.print(item)


def load_records(paths: Sequence[Path] | None) -> list[Record]:
    """Records from the given files/folders (default results/); damaged files are skipped with a
    warning on stderr."""
    from rexbench.records.store import load_records as load

    err = console(stderr=True)
    return load(
        paths or [Path("results")],
        skip_bad=True,
        on_skip=lambda msg: err.print(f"warning: {msg}", markup=False, soft_wrap=True),
    )
