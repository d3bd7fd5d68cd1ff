"""Children that a test interrupts with SIGINT, as a terminal's Ctrl-C would."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """`preexec_fn` for a child that must see SIGINT: a test session started as a background job
    of a script (`pytest &`) inherits SIGINT ignored (POSIX), and Python then installs no
    KeyboardInterrupt handler, so the child would never be interrupted."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
