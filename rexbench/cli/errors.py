"""How the command line fails: one line on stderr, `rexbench: error: WHAT; WHAT TO DO`, exit 2.

Three sources of failure end here: a RexbenchError from the library, a click usage error (an
unknown option, a value of the wrong type: click would print a six-line box), and a stdout that
cannot be written (a closed pipe, a full disk), which must not end as exit 1 ("regression" for the
gate) or a traceback. SIGTERM is handled like Ctrl-C, so that the commands keep what they finished.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from rexbench.errors import RexbenchError

INTERRUPTED = 130  # 128 + SIGINT
TERMINATED = 143  # 128 + SIGTERM


def error_line(message: str) -> None:
    """Print a user-facing error as one line on stderr (never wrapped, whatever its length)."""
    flat = " ".join(str(message).split())
    with contextlib.suppress(OSError):
        print(f"rexbench: error: {flat}", file=sys.stderr, flush=True)


def usage_errors() -> tuple[type[Exception], ...]:
    """The exception types of command-line parsing: click's, and Typer's own copy of them."""
    import typer

    found: list[type[Exception]] = []
    with contextlib.suppress(ImportError):
        import click

        found.append(click.ClickException)
    base = getattr(typer, "TyperException", None)
    if isinstance(base, type) and issubclass(base, Exception):
        found.append(base)
    return tuple(found)


def usage_message(exc: Any, root: Any = None, args: Sequence[str] = ()) -> str:
    """A click usage error (a click.ClickException) as one line that ends with the --help of the
    command it is about (from the error's context, else from `args` walked down `root`'s commands)."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    cause = exc.__cause__
    if hasattr(cause, "errors") and getattr(exc, "param", None) is not None:  # pydantic's words
        first = cause.errors()[0]
        name = max(exc.param.opts, key=len) if exc.param.opts else exc.param.name
        why = str(first.get("msg", "")).removeprefix("Value error, ").rstrip(".")
        message = f"Invalid value for '{name}': {first.get('input')!r} ({why[:1].lower()}{why[1:]})"
    ctx = getattr(exc, "ctx", None)
    if message.startswith("No such command") and ctx is not None:
        names = ", ".join(sorted(getattr(ctx.command, "commands", {}) or {}))
        message += f"{'' if message.endswith('?') else '.'} The commands are: {names}"
    where = ctx.command_path if ctx is not None else _command_path(root, args)
    return f"{message}; see `{where} --help`"


def _command_path(root: Any, args: Sequence[str]) -> str:
    """`rexbench baseline save` for args ["baseline", "save", ...] under the click group `root`."""
    path, group = ["rexbench"], root
    for arg in args:
        commands = getattr(group, "commands", None)
        if not commands or arg not in commands:
            break
        path.append(arg)
        group = commands[arg]
    return " ".join(path)


class OutputError(RexbenchError):
    """stdout cannot be written: the reader closed the pipe, or the disk behind it is full."""

    def __init__(self, exc: OSError) -> None:
        if exc.errno == errno.EPIPE:
            what = (
                "the program reading the output closed it (broken pipe); the output is incomplete"
            )
        else:
            what = f"{exc.strerror or exc}; write the output somewhere with room, or free space"
        super().__init__(f"cannot write to stdout: {what}")


class GuardedStream:
    """stdout whose write and flush failures become an OutputError (one line, exit 2)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise OutputError(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputError(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def guarded_stdout() -> Iterator[GuardedStream]:
    """sys.stdout as a GuardedStream for the duration of a command."""
    saved = sys.stdout
    guard = GuardedStream(saved)
    sys.stdout = guard  # type: ignore[assignment]
    try:
        yield guard
    finally:
        sys.stdout = saved


def silence_stdout() -> None:
    """After a failed write, point file descriptor 1 at /dev/null, so that the interpreter's last
    flush of what is still buffered cannot fail again (and print "Exception ignored ...")."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds like Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def handle_sigterm() -> None:
    """Turn SIGTERM into `Terminated` (a KeyboardInterrupt) in the main thread."""
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGTERM, _on_sigterm)
