"""How a worker process ended when it should not have: one short reason for the line and the record.

A worker that crashes (a signal: SIGSEGV, SIGABRT, ...), is killed (SIGKILL: by the kernel's
out-of-memory killer when this memory cgroup's OOM kill count grew meanwhile,
rexbench.measure.machine.processes), exits, or hangs past --timeout becomes a `Fault`: its kind and
a reason such as "crashed (SIGSEGV: segmentation fault) in forward (nets.py:12)". Where the worker's
Python stack is known (faulthandler writes it to the worker's log when it crashes) the innermost
frame is named.
"""

from __future__ import annotations

import re
import signal
import sysconfig
from dataclasses import dataclass
from pathlib import Path

WORDS = {
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "bus error",
    signal.SIGILL: "illegal instruction",
    signal.SIGFPE: "arithmetic error",
}
KILLED = {  # by whether this memory cgroup's OOM kill count grew while the worker ran
    True: "was killed by the kernel's out-of-memory killer (SIGKILL)",
    None: "was killed (SIGKILL; out of memory?)",
    False: "was killed (SIGKILL)",
}
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<function>\S+)')


@dataclass(frozen=True)
class Fault:
    """kind: "crashed", "killed", "exited" or "timeout"; reason: what the line and the record say
    after "the worker"."""

    kind: str
    reason: str


def innermost_frame(log: str) -> str | None:
    """ "in forward (nets.py:12)": the innermost frame outside Python's own library in
    faulthandler's stack in a worker's log (it lists the most recent call first)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    for match in _FRAME.finditer(log):
        if not match["file"].startswith(stdlib):
            return f"in {match['function']} ({Path(match['file']).name}:{match['line']})"
    return None


def ended(returncode: int, log: str = "", oom_grew: bool | None = None) -> Fault:
    """The fault of a worker that ended with `returncode` (negative: the signal that ended it).
    log: what it wrote to stdout and stderr; oom_grew: whether the OOM kill count grew while it
    ran (None: unknown here)."""
    if returncode < 0:
        number = -returncode
        name = _signal_name(number)
        if number == signal.SIGKILL:
            return Fault("killed", KILLED[oom_grew])
        word = WORDS.get(signal.Signals(number), "") if name.startswith("SIG") else ""
        where = innermost_frame(log)
        reason = f"crashed ({name}{f': {word}' if word else ''})"
        return Fault("crashed", f"{reason} {where}" if where else reason)
    last = next((line.strip() for line in reversed(log.splitlines()) if line.strip()), "")
    detail = f": {last[:200]}" if last else ""
    return Fault("exited", f"exited with code {returncode} before it finished{detail}")


def timed_out(seconds: float) -> Fault:
    return Fault("timeout", f"ran past --timeout {seconds:g} s and was stopped (hung?)")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
