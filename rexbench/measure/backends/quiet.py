"""Exporters, converters and counting libraries (fvcore, thop, JIT tracing) print progress, graphs
and deprecation notices: `quiet()` keeps them off the console for the duration (their errors still
reach the caller)."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Python's warnings, sys.stdout and sys.stderr, and the native file descriptors 1 and 2,
    silenced."""
    sink = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
        _native_output_silenced(),
    ):
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _native_output_silenced() -> Iterator[None]:
    """File descriptors 1 and 2 pointed at /dev/null for the duration (native code such as the
    TorchScript exporter prints its graph dumps there, past Python's sys.stdout and sys.stderr);
    restored afterwards."""
    import os
    import sys

    saved: dict[int, int] = {}
    try:
        for fd, stream in ((1, sys.__stdout__), (2, sys.__stderr__)):
            if stream is not None:
                stream.flush()
            saved[fd] = os.dup(fd)
    except (OSError, ValueError):  # no real descriptors (a closed stream): leave them alone
        for copy in saved.values():
            os.close(copy)
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            for fd in saved:
                os.dup2(null.fileno(), fd)
        yield
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
