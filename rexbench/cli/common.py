"""Output helpers shared by the CLI commands: consoles, JSON, tables that fit, records with warnings."""

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
    """A Rich console; created on demand so that importing the CLI stays cheap. Text printed on it
    is never hard-wrapped at the page width (a log or a pipe gets whole lines); tables go through
    `print_tables`."""
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def print_tables(
    *renderables: Any, out: Console | None = None, max_width: int | None = None
) -> None:
    """Print on stdout (or `out`), each table as a table where it fits the page whole and as one
    block per row where it does not (rexbench.cli.tables): no number, name or unit is ever cut.
    A page that is not a terminal is as wide as the console says (80, or the COLUMNS variable),
    at most `max_width`."""
    from rich.table import Table

    from rexbench.cli.tables import fit, page_width

    out = out if out is not None else console()
    for item in renderables:
        if isinstance(item, Table):
            out.print(fit(item, page_width(out, max_width)), soft_wrap=False)
        else:
            out.print(item, soft_wrap=False)


print_wide = print_tables  # the earlier name


def load_records(paths: Sequence[Path] | None) -> list[Record]:
    """Records from the given files/folders (default runs/). Damaged records are skipped with a
    warning on stderr; none at all to show is an error (one line, before any other output)."""
    from rexbench.cli.options import RUNS
    from rexbench.errors import RexbenchError
    from rexbench.records.store import load_records as load

    given = list(paths or [RUNS])
    if not paths and not RUNS.exists():
        raise RexbenchError(
            f"no records yet in {RUNS}/, where profile and sweep write them: measure first "
            "(rexbench profile rexnet_x1.0), or read the committed example (results/example)"
        )
    skipped: list[str] = []
    records = load(given, skip_bad=True, on_skip=skipped.append)
    where = ", ".join(str(p) for p in given)
    if not records and skipped:
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise RexbenchError(f"no readable record in {where}: {skipped[0]}{more}")
    if not records:
        raise RexbenchError(
            f"no rexbench records in {where}: measure first (rexbench profile MODEL --out "
            f"{given[0]}), or give the folder that holds them"
        )
    err = console(stderr=True)
    for message in skipped:
        err.print(f"warning: {message}", markup=False, highlight=False)
    return records
