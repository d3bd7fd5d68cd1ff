"""Whether a measurement's samples can be trusted, recorded with them (`Timing.validity`) and used:
the GPU's state through the rounds (rexbench.measure.machine.gpu_state) and torch.compile's recompilations
during the warm-up and the timed calls (rexbench.measure.backends.cudagraphs.CompileWatch).

`RoundWatch` follows one interleaved measurement through the timing loop's progress events, which
come between chunks, never inside a timed region: one GPU reading per round, compile counters after
every chunk. `warnings` turns a record's validity into record warnings; `slowdown_of` is what the
gate reads to call a comparison inconclusive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rexbench.measure.backends.cudagraphs import CompileWatch, compile_counters, recompile_warnings
from rexbench.measure.machine.gpu_state import GpuSampler, clock_range, slowdown

if TYPE_CHECKING:
    from rexbench.measure.timing.loop import ProgressEvent


class RoundWatch:
    """One measurement's validity. runners: every runner's name, in the order the timing loop gets
    them; compiled: the names of those that were torch.compiled (their recompilations are counted).
    sampler / read_counters: injectable for tests (default: NVML on a cuda device, none on CPU;
    torch._dynamo's counters when anything is compiled)."""

    def __init__(
        self,
        device: str,
        runners: Sequence[str],
        compiled: Sequence[str] = (),
        *,
        sampler: GpuSampler | None = None,
        read_counters: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.runners = list(runners)
        self.compiled = set(compiled)
        if sampler is None and device.startswith("cuda"):
            sampler = GpuSampler(device)
        self.sampler = sampler
        self.compile_watch: CompileWatch | None = None
        if self.compiled:
            self.compile_watch = CompileWatch(self.runners, read_counters or compile_counters)
        self._chunks = 0
        self.gpu: dict[str, Any] | None = None

    def start(self) -> None:
        if self.sampler is not None:
            self.sampler.start()

    def on_event(self, event: ProgressEvent) -> None:
        """After a runner's warm-up or one of its chunks: its compile counts; after every round
        (one chunk of each runner), a GPU reading."""
        if self.compile_watch is not None:
            self.compile_watch.seen(event.runner, event.phase)
        if event.phase != "timing":
            return
        self._chunks += 1
        if self.sampler is not None and self._chunks % len(self.runners) == 0:
            self.sampler.sample(f"round {self._chunks // len(self.runners)}")

    def finish(self) -> None:
        if self.sampler is not None:
            self.gpu = self.sampler.stop()

    def validity(self, runner: str) -> dict[str, Any]:
        """What the record of `runner` stores: the GPU's readings (shared by every runner of the
        measurement) and, for a compiled runner, its recompilations."""
        out: dict[str, Any] = {}
        if self.gpu is not None:
            out["gpu"] = self.gpu
        if self.compile_watch is not None and runner in self.compiled:
            out["recompiles"] = dict(self.compile_watch.counts[runner])
        return out


def warnings(validity: dict[str, Any] | None, cudagraphs: bool = False) -> list[str]:
    """The warnings of a record's validity: GPU slowdown, recompilations, CUDA graphs skipped."""
    validity = validity or {}
    out = []
    gpu = validity.get("gpu")
    reasons = slowdown(gpu)
    if reasons:
        clocks = clock_range(gpu)
        span = f"; SM clock {clocks[0]}-{clocks[1]} MHz" if clocks else ""
        out.append(
            f"GPU slowdown: {', '.join(reasons)}{span}: the clocks were lowered by power or "
            "temperature during the measurement, so its latency is not comparable (the gate calls "
            "it inconclusive); let the GPU cool down or check its power limit, and re-run"
        )
    out += recompile_warnings(validity.get("recompiles"), cudagraphs)
    return out


def slowdown_of(record: Any) -> str | None:
    """Why a record's GPU clocks count as lowered during its measurement, or None."""
    timing = getattr(record, "timing", None)
    reasons = slowdown((getattr(timing, "validity", None) or {}).get("gpu"))
    return "; ".join(reasons) if reasons else None


def recompiled_of(record: Any) -> int:
    """Graphs compiled during a record's warm-up and timed calls (0: none, or not compiled)."""
    timing = getattr(record, "timing", None)
    counts = (getattr(timing, "validity", None) or {}).get("recompiles") or {}
    return int(counts.get("warmup_graphs", 0)) + int(counts.get("timing_graphs", 0))
