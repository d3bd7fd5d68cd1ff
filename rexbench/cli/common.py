"""Option types and output helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

ModelsArg = Annotated[
    list[str],
    typer.Argument(
        help="Model names, aliases or specs (see `rexbench models`).", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the same data as JSON on stdout.")]
ResolutionOpt = Annotated[
    int | None,
    typer.Option(
        "--resolution",
        "-r",
        help="Input resolution (default: the model's own).",
        show_default=False,
    ),
]
InputShapeOpt = Annotated[
    str | None,
    typer.Option(
        "--input-shape",
        help="Input shape CxHxW, e.g. 3x224x224 (HxW or one size mean 3 channels); default: the model's own.",
        show_default=False,
    ),
]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        "--weights", help="Checkpoint to load (format detected automatically).", show_default=False
    ),
]


def console(stderr: bool = False):
    """A Rich console; created on demand so that importing the CLI stays cheap."""
    from rich.console import Console

    return Console(stderr=stderr)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
