"""Per-iteration latency samples, several runners interleaved, warm-up kept apart; clock and device
operations injectable so the loop can be tested without a GPU.

CPU: one `time.perf_counter_ns` pair per iteration. CUDA: one event pair per iteration, then a
synchronize, `start.elapsed_time(end)` converted to integer nanoseconds (torch.cuda.Event docs; the
CUDA timing recipe of torch.utils.benchmark). Everything runs under `torch.inference_mode()`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from rexbench.measure.timing.devices import DeviceOps, device_ops, oom_error
from rexbench.stats import Summary, summarize

Clock = Callable[[], int]


class EndRounds(Exception):
    """Raised by a progress callback after a chunk to end the timing at the end of the current
    round: every runner keeps the samples it has (a caller's time budget; rexbench.tune)."""


class Remote(Protocol):
    """A runner whose calls run and are timed in another process (rexbench.measure.run.workers):
    the loop asks it for its warm-up and its chunks instead of calling anything itself."""

    backend: dict[str, Any]  # `backend_state()` in that process

    def warmup(self, n: int) -> tuple[list[int], int | None]:
        """n timed warm-up calls: their samples and the peak memory over them (measured as this
        process's DeviceOps would: the same device on the same machine)."""

    def chunk(self, n: int, phase: str) -> list[int]:
        """n timed calls (phase "warmup" or "timing"): their samples."""


@dataclass
class Runner:
    """One thing to time: `fn()` runs one batch of `batch_size` images (input already on device).

    setup: called before the runner's warm-up and before each of its chunks, outside the timed
    region (e.g. to set this runner's own thread count when runners need different ones).
    before_call: called before every call, outside the timed region (on CUDA it is queued before
    the start event: e.g. the L2 flush of rexbench.measure.timing.l2flush).
    remote: set when the calls run in another process (`Remote`); `fn` is then never called.
    """

    name: str
    fn: Callable[[], object]
    batch_size: int = 1
    setup: Callable[[], None] | None = None
    before_call: Callable[[], None] | None = None
    remote: Remote | None = None


@dataclass(frozen=True)
class ProgressEvent:
    """Sent to the progress callback between chunks of iterations, never inside a timed region."""

    phase: str  # "warmup" or "timing"
    runner: str
    done: int
    total: int


@dataclass
class TimerResult:
    """What the timer measured for one runner. samples_ns: timed iterations; warmup_ns: warm-up, kept
    apart. A record stores it as `records.schema.Timing`.

    peak_memory_bytes is measured over the warm-up calls (None when warmup is 0); its meaning is
    given by memory_method (see devices.CpuOps / CudaOps). backend: threads, cuDNN and TF32 settings in
    force during the run (see `backend_state`).
    """

    name: str
    device: str
    batch_size: int
    clock: str
    samples_ns: list[int]
    warmup_ns: list[int]
    peak_memory_bytes: int | None
    memory_method: str | None
    backend: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0  # wall time of the whole (interleaved) measurement, warm-up included

    def summary(self) -> Summary:
        return summarize(self.samples_ns, self.batch_size)

    @property
    def warmup_s(self) -> float:
        return sum(self.warmup_ns) / 1e9

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def backend_state() -> dict[str, Any]:
    """The global torch settings that change kernel choice or speed, as they are now."""
    import torch

    return {
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


@contextlib.contextmanager
def backend_settings(
    threads: int | None = None, cudnn_benchmark: bool = True, allow_tf32: bool = False
) -> Iterator[dict[str, Any]]:
    """Set thread count, cuDNN benchmark mode and TF32 explicitly; restore all of them afterwards.

    Yields the resulting `backend_state()`. TF32 is off unless asked (PyTorch's own default for
    cuDNN convolutions is on, so "fp32" would silently be TF32 on Ampere and later).
    """
    import torch

    saved = backend_state()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = cudnn_benchmark
        torch.backends.cudnn.allow_tf32 = allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
        yield backend_state()
    finally:
        torch.set_num_threads(saved["threads"])
        torch.backends.cudnn.benchmark = saved["cudnn_benchmark"]
        torch.backends.cudnn.allow_tf32 = saved["cudnn_allow_tf32"]
        torch.backends.cuda.matmul.allow_tf32 = saved["matmul_allow_tf32"]


def time_calls(
    fn: Callable[[], object],
    n: int,
    ops: DeviceOps,
    clock: Clock,
    before: Callable[[], None] | None = None,
) -> list[int]:
    """n timed calls of fn; nothing but the call sits between the two timestamps (`before`, when
    given, runs ahead of each call, outside them)."""
    samples: list[int] = []
    if ops.uses_events:
        ops.synchronize()  # nothing queued before the first start event
        for _ in range(n):
            if before is not None:
                before()
            start, end = ops.event(), ops.event()
            start.record()
            fn()
            end.record()
            ops.synchronize()
            samples.append(round(start.elapsed_time(end) * 1_000_000))
    else:
        for _ in range(n):
            if before is not None:
                before()
            t0 = clock()
            fn()
            t1 = clock()
            samples.append(t1 - t0)
    return samples


def _ignore(event: ProgressEvent) -> None:
    pass


def measure_interleaved(
    runners: Sequence[Runner],
    runs: int,
    warmup: int,
    *,
    device: str = "cpu",
    round_size: int = 10,
    ops: DeviceOps | None = None,
    clock: Clock = time.perf_counter_ns,
    progress: Callable[[ProgressEvent], None] | None = None,
) -> list[TimerResult]:
    """Time several runners in small interleaved rounds so that machine drift hits all equally.

    1. Warm-up: each runner in turn runs `warmup` calls (timed into warmup_ns, peak memory taken
       over them). Compilation belongs to prepare(), before this. With several runners the last
       min(round_size, warmup // 2) of each runner's warm-up calls run as one interleaved round,
       so the memory allocator reaches the state the timed rounds will keep: warmed one runner
       after the other, a model's first timed chunk still took thousands of page faults, its heap
       re-grown around the allocations the anchor's warm-up made after it.
    2. Timing: rounds of `round_size` calls per runner; round r starts with runner r mod k
       (A B, B A, A B ... for two runners), so neither always follows the other.
    The progress callback is called before and after every warm-up, once before the first round
    (done 0: timing starts) and after every chunk, always outside timed regions; raising EndRounds
    after a chunk ends the timing once the round is done, with fewer than `runs` samples.
    A runner's `setup` runs before its warm-up and before each of its chunks; each TimerResult's
    `backend` is the backend state right after its runner's first setup.
    """
    import torch

    if not runners:
        raise ValueError("no runners to measure")
    if runs < 1 or warmup < 0 or round_size < 1:
        raise ValueError("runs and round_size must be >= 1, warmup >= 0")
    ops = ops if ops is not None else device_ops(device)
    loop = _Loop(runners, ops, clock, progress if progress is not None else _ignore)
    wall0 = time.perf_counter()
    try:
        with ops.scope(), torch.inference_mode():
            loop.warm_up(warmup, settle=min(round_size, warmup // 2) if len(runners) > 1 else 0)
            loop.rounds(runs, round_size)
    except Exception as exc:
        if ops.is_oom(exc):
            ops.after_oom()
            raise oom_error(ops.name, loop.current.batch_size, loop.current.name) from None
        raise
    return loop.results(wall=time.perf_counter() - wall0)


class _Loop:
    """One interleaved measurement under way: what it took of each runner so far, and the runner
    running now (the one an out-of-memory error names)."""

    def __init__(
        self,
        runners: Sequence[Runner],
        ops: DeviceOps,
        clock: Clock,
        emit: Callable[[ProgressEvent], None],
    ) -> None:
        self.runners, self.ops, self.clock, self.emit = runners, ops, clock, emit
        self.current = runners[0]
        self.samples: list[list[int]] = [[] for _ in runners]
        self.warm: list[list[int]] = [[] for _ in runners]
        self.memory: list[int | None] = [None] * len(runners)
        self.backends: list[dict[str, Any]] = [{} for _ in runners]

    def warm_up(self, warmup: int, *, settle: int) -> None:
        """Each runner's first `warmup - settle` warm-up calls in turn, then its last `settle` ones
        in one interleaved round."""
        for i, runner in enumerate(self.runners):
            self.current = runner
            self.backends[i], self.warm[i], self.memory[i] = _warm_up(
                runner, warmup - settle, self.ops, self.clock, total=warmup, emit=self.emit
            )
        for i, runner in enumerate(self.runners if settle else ()):
            self.current = runner
            self.warm[i] += _chunk(runner, settle, self.ops, self.clock, "warmup")
            self.emit(ProgressEvent("warmup", runner.name, warmup, warmup))

    def rounds(self, runs: int, round_size: int) -> None:
        """`runs` timed calls of every runner, in rounds of `round_size`; round r starts with
        runner r mod k."""
        self.emit(ProgressEvent("timing", self.runners[0].name, 0, runs))  # a display stops drawing
        ending = False
        for r in range(-(-runs // round_size)):
            n = min(round_size, runs - r * round_size)
            for k in range(len(self.runners)):
                i = (r + k) % len(self.runners)
                self.current = self.runners[i]
                self.samples[i] += _chunk(self.current, n, self.ops, self.clock, "timing")
                done = len(self.samples[i])
                try:
                    self.emit(ProgressEvent("timing", self.current.name, done, runs))
                except EndRounds:  # the round is finished first: every runner alike
                    ending = True
            if ending:
                return

    def results(self, *, wall: float) -> list[TimerResult]:
        """One TimerResult per runner; `wall`: the whole measurement's wall time."""
        ops = self.ops
        return [
            TimerResult(
                runner.name,
                ops.name,
                runner.batch_size,
                ops.clock_name,
                self.samples[i],
                warmup_ns=self.warm[i],
                peak_memory_bytes=self.memory[i],
                memory_method=ops.memory_method if self.memory[i] is not None else None,
                backend=self.backends[i],
                wall_s=wall,
            )
            for i, runner in enumerate(self.runners)
        ]


def _warm_up(
    runner: Runner,
    n: int,
    ops: DeviceOps,
    clock: Clock,
    *,
    total: int,
    emit: Callable[[ProgressEvent], None],
) -> tuple[dict[str, Any], list[int], int | None]:
    """The runner's setup, then the first n of its `total` warm-up calls: the backend state after
    the setup, their samples and the peak memory over them (None when `total` is 0)."""
    if runner.setup is not None:
        runner.setup()
    backend = backend_state() if runner.remote is None else runner.remote.backend
    emit(ProgressEvent("warmup", runner.name, 0, total))  # a display shows it
    samples: list[int] = []
    memory = None
    if total and runner.remote is not None:
        samples, memory = runner.remote.warmup(n)
    elif total:
        ops.begin_memory()
        samples = time_calls(runner.fn, n, ops, clock, runner.before_call)
        memory = ops.end_memory()
    emit(ProgressEvent("warmup", runner.name, len(samples), total))
    return backend, samples, memory


def _chunk(runner: Runner, n: int, ops: DeviceOps, clock: Clock, phase: str) -> list[int]:
    """The runner's setup, then n timed calls."""
    if runner.setup is not None:
        runner.setup()
    if runner.remote is not None:
        return runner.remote.chunk(n, phase)
    return time_calls(runner.fn, n, ops, clock, runner.before_call)


def measure(
    fn: Callable[[], object],
    runs: int,
    warmup: int,
    *,
    name: str = "model",
    batch_size: int = 1,
    **kwargs: Any,
) -> TimerResult:
    """One runner: `measure_interleaved` with a single entry (same keyword arguments)."""
    return measure_interleaved([Runner(name, fn, batch_size)], runs, warmup, **kwargs)[0]
