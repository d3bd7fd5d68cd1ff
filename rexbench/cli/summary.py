"""`--summary FILE` of gate and history: the Markdown file to append to, checked before any work.

CI recipes pass `--summary "$GITHUB_STEP_SUMMARY"`; outside GitHub Actions that variable is unset and
the value is empty. An empty value means no summary (said in a note), so that one command line runs
in CI and on a laptop; a folder, or a file that cannot be created or appended to, is an error before
anything is measured or read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from rexbench.errors import RexbenchError

SummaryOpt = Annotated[
    str | None,
    typer.Option(
        "--summary",
        metavar="<path>",
        help='Append a Markdown summary to this file, e.g. "$GITHUB_STEP_SUMMARY". An empty value '
        "(that variable unset, outside GitHub Actions) writes none and says so, so one CI command "
        "line also runs elsewhere.",
        show_default=False,
    ),
]

EMPTY_NOTE = (
    "--summary is empty (a variable such as $GITHUB_STEP_SUMMARY, unset outside GitHub Actions): "
    "no summary written"
)


def summary_file(value: str | None) -> Path | None:
    """The file to append the summary to; None for none (the option not given, or given empty).
    One that cannot be appended to is a RexbenchError; nothing is created here."""
    if value is None or not value.strip():
        return None
    path = Path(value)
    problem = _cannot_append(path)
    if problem is not None:
        raise RexbenchError(f"--summary {value}: {problem}")
    return path


def _cannot_append(path: Path) -> str | None:
    """Why text cannot be appended to `path` (what to do included), or None."""
    parent = path.parent
    if path.is_dir():
        return "that is a folder; give a file to append the Markdown to"
    if path.exists():
        return (
            None if os.access(path, os.W_OK) else "the file is not writable; give a writable file"
        )
    if parent.is_dir():
        if os.access(parent, os.W_OK | os.X_OK):
            return None
        return f"the folder {parent} is not writable; give a file in a writable folder"
    if parent.exists():
        return f"{parent} is a file, not a folder; give a file in a folder"
    return f"the folder {parent} does not exist; create it, or give a file in an existing folder"
