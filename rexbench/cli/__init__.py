"""The `rexbench` command: a thin Typer shell over the library.

Every command lives in its own module and is registered here, in one visible list. Errors meant for
the user (RexbenchError, click usage errors, an unwritable stdout) become one line on stderr and exit
code 2 (rexbench.cli.errors); Ctrl-C exits 130.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    from rexbench.measure.run.parts import Parts

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
    ("rexbench.cli.tune", "tune"),
]


def _version(value: bool) -> None:
    if value:
        from rexbench import __version__

        print(f"rexbench {__version__}")
        raise typer.Exit()


VersionOpt = Annotated[
    bool,
    typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
]


def build_app() -> typer.Typer:
    import importlib

    app = typer.Typer(
        name="rexbench",
        help="Build, count, time and compare ReXNet and the efficient vision models it is measured against.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # click's plain help: it wraps at any width and never cuts an option
    )

    @app.callback()
    def main(version: VersionOpt = False) -> None:
        """Build, count, time and compare ReXNet and the efficient vision models it is measured against."""

    for module_name, attr in _COMMANDS:
        obj = getattr(importlib.import_module(module_name), attr)
        if isinstance(obj, typer.Typer):
            app.add_typer(obj)
        else:
            app.command(name=attr.replace("_", "-"))(obj)
    return app


def _whole_summaries(command: Any) -> None:
    """A group's list of commands shows each one's first paragraph, wrapped, where click would cut
    it at the page width with "..."."""
    for sub in (getattr(command, "commands", None) or {}).values():
        if sub.help and not sub.short_help:
            sub.short_help = " ".join(sub.help.split("\n\n")[0].split())
        _whole_summaries(sub)


def _invoke(app: typer.Typer, args: list[str], parts: Parts | None) -> int:
    """Parse and run one command line; its exit code. Errors propagate. `parts` reaches the
    commands as the click context's `obj`."""
    command = typer.main.get_command(app)
    _whole_summaries(command)
    try:
        with command.make_context("rexbench", args, obj=parts) as ctx:
            command.invoke(ctx)
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group without a command: its help
            print(exc.format_message())  # type: ignore[attr-defined]
            return 0
        raise
    return 0


def run(argv: Sequence[str] | None = None, *, parts: Parts | None = None) -> int:
    """Run the CLI and return its exit code (used by `main` and by the tests).

    parts: what `rexbench profile` measures with (rexbench.measure.run.parts; None: the real
    ones), for tests that run the command on a fake device. Every failure is one line on stderr (rexbench.cli.errors): a RexbenchError or a click usage
    error exits 2, and so does a stdout that cannot be written; Ctrl-C exits 130, SIGTERM 143.
    """
    from rexbench.cli import errors

    args = list(argv) if argv is not None else sys.argv[1:]
    app = build_app()
    with errors.guarded_stdout() as stdout:
        try:
            code = _invoke(app, args, parts)
            stdout.flush()
        except errors.usage_errors() as exc:
            errors.error_line(errors.usage_message(exc, typer.main.get_command(app), args))
            return 2
        except RexbenchError as exc:
            errors.error_line(str(exc))
            if isinstance(exc, errors.OutputError) and argv is None:
                errors.silence_stdout()
            return exc.exit_code
        except (KeyboardInterrupt, typer.Abort) as exc:
            terminated = isinstance(exc, errors.Terminated)
            with contextlib.suppress(OSError):
                print(f"rexbench: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
            return errors.TERMINATED if terminated else errors.INTERRUPTED
    return code


def main() -> None:
    from rexbench.cli import errors

    errors.handle_sigterm()
    sys.exit(run())
