"""Our own threads still spinning after a call: waited out before a runtime's chunk.

A thread pool keeps its workers spinning for a while after the work is done, waiting for more.
Measured on this project's 2-core machine (rexnet_x1.0 at 2 threads; CPU time of the process's
other threads in the 300 ms after one call, 8 calls each): PyTorch's OpenMP worker 7-11 ms after an
eager call (libgomp's spin count), ONNX Runtime's intra-op worker 36-44 ms after a `run` with its
default settings (0 with `session.force_spinning_stop`, which measure.backends.onnxruntime sets),
OpenVINO's TBB workers 0-1 ms. A chunk of the same pool reuses the spinning workers; but a runtime's
chunk right after a PyTorch one (the rounds interleave them) would share the cores with PyTorch's
spinning worker: on 2 cores its 2 threads waited for it, its first calls were slower, and the
kernel counted that wait as contention.

`Settle` therefore waits, before each chunk of a runtime configuration and outside the timed
region, until no other thread of this process is running or runnable (state R in
/proc/self/task/*/stat), at most LIMIT_S, and keeps what it waited (`info`, stored with the
runtime's record). Where /proc cannot be read (macOS) it does not wait.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

TASKS_DIR = Path("/proc/self/task")
LIMIT_S = 0.1  # per chunk: libgomp's spin ends after about 10 ms of CPU time
POLL_S = 0.0005


def parse_state(text: str) -> str | None:
    """The state letter of a /proc/<pid>/task/<tid>/stat line (after the parenthesised name)."""
    _, paren, rest = text.rpartition(")")
    parts = rest.split()
    return parts[0] if paren and parts else None


def running_others(tasks: Path = TASKS_DIR) -> int | None:
    """How many threads of this process other than the caller are running or runnable, or None
    when /proc cannot be read."""
    me = str(threading.get_native_id())
    try:
        names = [name for name in tasks.iterdir() if name.name != me]
    except OSError:
        return None
    count = 0
    for task in names:
        try:
            count += parse_state((task / "stat").read_text()) == "R"
        except OSError:  # the thread ended
            continue
    return count


class Settle:
    """Wait until the process's other threads are idle (at most `limit_s`); `info` tallies the
    chunks, the seconds waited in all and at most, and how many chunks started with a thread of
    ours still running after the limit."""

    def __init__(self, limit_s: float = LIMIT_S, tasks: Path = TASKS_DIR) -> None:
        self.limit_s, self.tasks = limit_s, tasks
        self.info: dict[str, Any] = {
            "limit_s": limit_s,
            "chunks": 0,
            "waited_s": 0.0,
            "max_s": 0.0,
            "not_settled": 0,
        }

    def __call__(self) -> float:
        start = time.perf_counter()
        while (busy := running_others(self.tasks)) and time.perf_counter() - start < self.limit_s:
            time.sleep(POLL_S)
        waited = time.perf_counter() - start
        info = self.info
        info["chunks"] += 1
        info["waited_s"] += waited
        info["max_s"] = max(info["max_s"], waited)
        info["not_settled"] += bool(busy)
        return waited
