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
/proc/self/task/*/stat), at most processes.IDLE_LIMIT_S, and keeps what it waited (`info`, stored with the
runtime's record). Where /proc cannot be read (macOS) it does not wait.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rexbench.measure.machine.processes import IDLE_LIMIT_S, SELF_TASKS, wait_idle


class Settle:
    """Wait until the process's other threads are idle (at most `limit_s`); `info` tallies the
    chunks, the seconds waited in all and at most, and how many chunks started with a thread of
    ours still running after the limit."""

    def __init__(self, limit_s: float = IDLE_LIMIT_S, tasks: Path = SELF_TASKS) -> None:
        self.limit_s, self.tasks = limit_s, tasks
        self.info: dict[str, Any] = {
            "limit_s": limit_s,
            "chunks": 0,
            "waited_s": 0.0,
            "max_s": 0.0,
            "not_settled": 0,
        }

    def __call__(self) -> float:
        waited, idle = wait_idle(self.tasks, self.limit_s)
        info = self.info
        info["chunks"] += 1
        info["waited_s"] += waited
        info["max_s"] = max(info["max_s"], waited)
        info["not_settled"] += not idle
        return waited
