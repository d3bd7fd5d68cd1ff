"""Where the hypervisor runs our virtual CPUs: a multi-thread memory stream timed against a 1-thread one.

What was found on this project's machine (KVM, AMD EPYC, 2 virtual CPUs, one process timing a
ReXNet-sized net at 2 threads for 14 minutes, every round also timing the other workloads below):
every few minutes the model moved between two speeds, 11.6 ms and 14.6-15.2 ms, and back. Nothing
else that rexbench watched moved: no steal time, no CPU pressure, no run-queue wait, the 1-thread
drift anchor at 0.61-0.62 ms throughout, the same model at 1 thread at 16.6-17.3 ms throughout.
What moved with it was the 2-thread memory stream (`c = a + b` over 3 x 16 MB, more than the L3):
1.15 ms while the model was fast, 0.67 ms while it was slow, against 1.5 ms at 1 thread in both.
That is the signature of the two virtual CPUs sharing one core complex (one L3, one memory link:
threads exchange data through the shared L3, so the model is fast, but the stream gets one link's
bandwidth) or sitting on two (two links, but every exchange between the threads crosses the
fabric). A gate whose baseline was measured in one placement and whose current run in the other
sees a 20-30% difference that no drift anchor at one thread can cancel: in the calibration of
docs/gate.md, 7 of 20 unchanged gates at 2 threads were called regressions (p10 ratios 1.14-1.23).
From a gate's few seconds the signature caught one of them (see docs/gate.md, Placement).

`Probe` times the stream at one thread and at the run's thread count, outside the timed regions,
before the rounds, every PROBE_EVERY rounds and after them; a record keeps the readings
(`Timing.contention["placement"]`) and its signature is median(N threads) / median(1 thread): about
0.75 sharing one complex, 0.44 on two, on this machine. Two runs whose signatures differ by more
than TOLERANCE ran on differently placed CPUs, and the gate does not judge their latency ratio
(rexbench.gate.contended). With one thread, on a GPU, or where the probe cannot run, there is no
signature, and nothing is compared.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

VERSION = 1
STREAM_MB = 16  # per buffer; three of them, more than a 32 MB L3
PROBE_EVERY = 5  # rounds
TOLERANCE = 0.2  # relative difference of two signatures that means another placement


class Probe:
    """The stream timed at one thread and at `threads`; the buffers live only while the probe is used."""

    def __init__(self, threads: int, megabytes: int = STREAM_MB) -> None:
        self.threads, self.megabytes = threads, megabytes
        self.one: list[int] = []
        self.many: list[int] = []
        self._buffers: list[Any] | None = None

    def sample(self) -> None:
        """One reading at each thread count; the caller's thread count is restored."""
        import torch

        if self._buffers is None:
            n = self.megabytes * 2**20 // 4
            self._buffers = [torch.ones(n) for _ in range(3)]  # pages touched here, not timed
        a, b, c = self._buffers
        saved = torch.get_num_threads()
        try:
            for threads, readings in ((1, self.one), (self.threads, self.many)):
                torch.set_num_threads(threads)
                start = time.perf_counter_ns()
                torch.add(a, b, out=c)
                readings.append(time.perf_counter_ns() - start)
        finally:
            torch.set_num_threads(saved)

    def close(self) -> None:
        self._buffers = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "threads": self.threads,
            "stream_mb": self.megabytes,
            "one_thread_ns": self.one,
            "threads_ns": self.many,
        }


def signature(data: dict[str, Any] | None) -> float | None:
    """median(N-thread stream) / median(1-thread stream) of stored readings, or None."""
    if not data or not data.get("one_thread_ns") or not data.get("threads_ns"):
        return None
    one = statistics.median(data["one_thread_ns"])
    return statistics.median(data["threads_ns"]) / one if one > 0 else None


def mismatch(base: dict[str, Any] | None, current: dict[str, Any] | None) -> str | None:
    """Why two runs' CPUs were placed differently, or None (alike, or either not probed)."""
    if not base or not current or base.get("threads") != current.get("threads"):
        return None
    a, b = signature(base), signature(current)
    if a is None or b is None or abs(b / a - 1) <= TOLERANCE:
        return None
    return (
        f"the virtual CPUs were placed differently than for the baseline ({base['threads']}-thread "
        f"/ 1-thread memory stream {a:.2f} then, {b:.2f} now)"
    )
