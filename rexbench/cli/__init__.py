"""The `rexbench` command: a thin Typer shell over the library.

Every command lives in its own module and is registered here, in one visible list. Errors meant for
the user (RexbenchError, click usage errors) become one line on stderr and exit code 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from rexbench.errors import RexbenchError

# (command module, attribute): each attribute is a Typer command function or a Typer sub-app.
_COMMANDS: list[tuple[str, str]] = [
    ("rexbench.cli.models", "models"),
    ("rexbench.cli.profile", "profile"),
    ("rexbench.cli.rank", "rank"),
    ("rexbench.cli.count", "count"),
    ("rexbench.cli.plot", "plot"),
    ("rexbench.cli.report", "report"),
    ("rexbench.cli.sweep", "sweep"),
    ("rexbench.cli.baseline", "baseline"),
    ("rexbench.cli.gate", "gate"),
    ("rexbench.cli.history", "history"),
]


def build_app() -> typer.Typer:
    import importlib

    app = typer.Typer(
        name="rexbench",
        help="Build, count, time and compare ReXNet and the efficient vision models it is measured against.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
    )
    for module_name, attr in _COMMANDS:
        obj = getattr(importlib.import_module(module_name), attr)
        if isinstance(obj, typer.Typer):
            app.add_typer(obj)
        else:
            app.command(name=attr.replace("_", "-"))(obj)
    return app


def error_line(message: str) -> None:
    """Print a user-facing error as one line on stderr."""
    flat = " ".join(str(message).split())
    print(f"rexbench: error: {flat}", file=sys.stderr)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (used by `main` and by the tests)."""
    app = build_app()
    try:
        app(args=list(argv) if argv is not None else None, prog_name="rexbench")
    except SystemExit as exc:  # Typer's standalone mode always ends this way
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except RexbenchError as exc:
        error_line(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print("rexbench: interrupted", file=sys.stderr)
        return 130
    return 0


def main() -> None:
    sys.exit(run())
