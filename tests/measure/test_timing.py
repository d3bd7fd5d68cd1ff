"""rexbench.measure.timing.loop (and measure.devices) with an injected clock and a fake CUDA device: exact samples, no timing asserts."""

import contextlib
import gc
import platform

import numpy as np
import pytest
import torch

from rexbench.errors import RexbenchError
from rexbench.measure.timing.devices import CpuOps, CudaOps, oom_error
from rexbench.measure.timing.loop import (
    EndRounds,
    ProgressEvent,
    Runner,
    backend_settings,
    measure,
    measure_interleaved,
)


class FakeClock:
    """A nanosecond clock that only moves when a fake model call advances it."""

    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def stepping_fn(clock: FakeClock, durations: list[int], log: list | None = None, name: str = ""):
    """A 'model' whose i-th call takes durations[i] ns on the fake clock."""
    calls = iter(durations)

    def fn():
        clock.now += next(calls)
        if log is not None:
            log.append(name)

    return fn


def test_cpu_samples_are_exact_and_warmup_is_kept_apart():
    clock = FakeClock()
    durations = [900, 800, 700] + [100, 110, 120, 130, 140]
    fn = stepping_fn(clock, durations)
    timing = measure(fn, runs=5, warmup=3, batch_size=4, clock=clock, name="toy")
    assert timing.warmup_ns == [900, 800, 700]
    assert timing.samples_ns == [100, 110, 120, 130, 140]
    assert all(type(s) is int for s in timing.samples_ns)
    assert timing.clock == "perf_counter_ns" and timing.device == "cpu"
    assert timing.name == "toy" and timing.batch_size == 4
    summary = timing.summary()
    assert summary.median == 120 and summary.throughput == pytest.approx(4e9 / 120)
    assert timing.warmup_s == pytest.approx(2400e-9)


def test_interleaving_order_rotates_each_round_and_samples_stay_with_their_runner():
    clock = FakeClock()
    log: list[str] = []
    a = stepping_fn(clock, [1] * 4 + [10] * 25, log, "A")
    b = stepping_fn(clock, [2] * 4 + [20] * 25, log, "B")
    events: list[ProgressEvent] = []
    ta, tb = measure_interleaved(
        [Runner("A", a), Runner("B", b)],
        runs=25,
        warmup=4,
        round_size=10,
        clock=clock,
        progress=events.append,
    )
    # warm-up: 2 calls of each runner, one after the other, then 2 of each as one round
    expected = ["A"] * 2 + ["B"] * 2 + ["A"] * 2 + ["B"] * 2
    expected += ["A"] * 10 + ["B"] * 10 + ["B"] * 10 + ["A"] * 10 + ["A"] * 5 + ["B"] * 5
    assert log == expected
    assert ta.samples_ns == [10] * 25 and tb.samples_ns == [20] * 25
    assert ta.warmup_ns == [1] * 4 and tb.warmup_ns == [2] * 4
    assert [(e.phase, e.runner, e.done, e.total) for e in events] == [
        ("warmup", "A", 0, 4),
        ("warmup", "A", 2, 4),
        ("warmup", "B", 0, 4),
        ("warmup", "B", 2, 4),
        ("warmup", "A", 4, 4),
        ("warmup", "B", 4, 4),
        ("timing", "A", 0, 25),
        ("timing", "A", 10, 25),
        ("timing", "B", 10, 25),
        ("timing", "B", 20, 25),
        ("timing", "A", 20, 25),
        ("timing", "A", 25, 25),
        ("timing", "B", 25, 25),
    ]


def test_interleaved_warmup_ends_with_one_round_of_at_most_round_size_calls():
    clock = FakeClock()
    log: list[str] = []
    a = stepping_fn(clock, [1] * 50, log, "A")
    b = stepping_fn(clock, [2] * 50, log, "B")
    ta, tb = measure_interleaved(
        [Runner("A", a), Runner("B", b)], runs=3, warmup=25, round_size=3, clock=clock
    )
    warm = log[: 2 * 25]
    assert warm == ["A"] * 22 + ["B"] * 22 + ["A"] * 3 + ["B"] * 3
    assert len(ta.warmup_ns) == len(tb.warmup_ns) == 25
    one = []
    measure(stepping_fn(clock, [1] * 10, one, "C"), runs=2, warmup=5, clock=clock)
    assert one == ["C"] * 7  # a single runner warms up in one go


def test_a_progress_callback_ends_the_timing_once_the_round_is_done():
    clock = FakeClock()
    log: list[str] = []
    a = stepping_fn(clock, [1] * 50, log, "A")
    b = stepping_fn(clock, [2] * 50, log, "B")

    def budget(event):
        if event.phase == "timing" and event.runner == "B" and event.done >= 3:
            raise EndRounds  # after B's first chunk: A's round-2 chunk is not started

    ta, tb = measure_interleaved(
        [Runner("A", a), Runner("B", b)],
        runs=9,
        warmup=0,
        round_size=3,
        clock=clock,
        progress=budget,
    )
    assert log == ["A"] * 3 + ["B"] * 3
    assert ta.samples_ns == [1] * 3 and tb.samples_ns == [2] * 3
    log.clear()

    def mid_round(event):
        if event.phase == "timing" and event.runner == "B" and event.done == 6:
            raise EndRounds  # B opens round 2 (B A): A's chunk of that round still runs

    runners = [Runner("A", a), Runner("B", b)]
    ta, tb = measure_interleaved(
        runners, runs=9, warmup=0, round_size=3, clock=clock, progress=mid_round
    )
    assert log == ["A"] * 3 + ["B"] * 3 + ["B"] * 3 + ["A"] * 3  # round 2 (B A) finished
    assert len(ta.samples_ns) == len(tb.samples_ns) == 6


def test_progress_callback_never_lands_inside_a_sample():
    clock = FakeClock()
    fn = stepping_fn(clock, [5] * 20)

    def slow_progress(event):
        clock.now += 1_000_000  # a slow display must not show up in the samples

    timing = measure(fn, runs=18, warmup=2, round_size=3, clock=clock, progress=slow_progress)
    assert timing.samples_ns == [5] * 18 and timing.warmup_ns == [5, 5]


def test_loop_runs_under_inference_mode():
    seen = []
    measure(lambda: seen.append(torch.is_inference_mode_enabled()), runs=3, warmup=1)
    assert seen == [True] * 4


class FakeEvent:
    def __init__(self, ops, ident):
        self.ops, self.ident, self.t = ops, ident, None

    def record(self):
        self.t = self.ops.gpu_time
        self.ops.log.append(f"record:{self.ident}")

    def elapsed_time(self, end):
        self.ops.log.append(f"elapsed:{self.ident}-{end.ident}")
        assert self.ops.log[-2] == "synchronize", "elapsed_time read before synchronize"
        return (end.t - self.t) / 1e6  # milliseconds


class FakeOOM(RuntimeError):
    pass


class FakeCudaOps:
    """Records every device call in order; 'GPU time' advances when the fake model runs."""

    name = "cuda:0"
    uses_events = True
    clock_name = "cuda_event"
    memory_method = "cuda_max_memory_allocated"

    def __init__(self):
        self.log, self.gpu_time, self.events = [], 0, 0

    def scope(self):
        @contextlib.contextmanager
        def scoped():
            self.log.append("enter")
            yield
            self.log.append("exit")

        return scoped()

    def synchronize(self):
        self.log.append("synchronize")

    def event(self):
        self.events += 1
        return FakeEvent(self, self.events)

    def begin_memory(self):
        self.log.append("reset_peak")

    def end_memory(self):
        self.log.append("max_allocated")
        return 123_456_789

    def is_oom(self, exc):
        return isinstance(exc, FakeOOM)

    def after_oom(self):
        self.log.append("empty_cache")


def test_cuda_path_records_events_around_each_call_and_synchronizes_before_reading():
    ops = FakeCudaOps()

    def fn():
        ops.log.append("fn")
        ops.gpu_time += 2_500_000  # 2.5 ms

    def never(*args):
        raise AssertionError("the CUDA path must not use the CPU clock")

    timing = measure(fn, runs=2, warmup=1, ops=ops, clock=never, batch_size=64)

    def one_call(s, e):
        return [f"record:{s}", "fn", f"record:{e}", "synchronize", f"elapsed:{s}-{e}"]

    assert ops.log == [
        "enter",
        "reset_peak",
        "synchronize",
        *one_call(1, 2),
        "max_allocated",
        "synchronize",
        *one_call(3, 4),
        *one_call(5, 6),
        "exit",
    ]
    assert timing.samples_ns == [2_500_000, 2_500_000] and timing.warmup_ns == [2_500_000]
    assert timing.clock == "cuda_event" and timing.device == "cuda:0"
    assert timing.peak_memory_bytes == 123_456_789
    assert timing.memory_method == "cuda_max_memory_allocated"


def test_no_warmup_means_no_memory_figure():
    ops = FakeCudaOps()
    timing = measure(lambda: None, runs=1, warmup=0, ops=ops)
    assert "reset_peak" not in ops.log
    assert timing.peak_memory_bytes is None and timing.memory_method is None


def test_out_of_memory_becomes_a_one_line_error_with_retry_advice():
    ops = FakeCudaOps()
    calls = []

    def fn():
        calls.append(1)
        if len(calls) > 2:
            raise FakeOOM("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(RexbenchError) as info:
        measure(fn, runs=10, warmup=1, ops=ops, batch_size=64, name="rexnet_x2.0/compile_cl")
    message = str(info.value)
    assert "out of memory on cuda:0" in message and "rexnet_x2.0/compile_cl" in message
    assert "at batch size 64" in message and "--batch-size 32" in message
    assert "\n" not in message
    assert ops.log[-1] == "empty_cache"


def test_other_errors_pass_through():
    def fn():
        raise ValueError("bug in the model")

    with pytest.raises(ValueError, match="bug in the model"):
        measure(fn, runs=1, warmup=0, ops=FakeCudaOps())


def test_oom_recognition_of_the_real_device_ops():
    assert CudaOps("cuda:1").is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not CudaOps("cuda").is_oom(RuntimeError("other"))
    cpu = CpuOps()
    assert cpu.is_oom(MemoryError())
    assert cpu.is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried ..."))
    assert not cpu.is_oom(RuntimeError("shape mismatch"))
    assert "or a smaller --resolution" in str(oom_error("cpu", 1, "x"))


def test_cpu_peak_memory_growth_sees_a_large_allocation():
    ops = CpuOps()
    assert ops.memory_method in ("vmhwm", "ru_maxrss")
    kept = []
    size = 64 * 2**20

    def fn():
        if not kept:
            block = np.ones(size, dtype=np.uint8)  # written, so resident
            kept.append(block.sum())
            del block

    timing = measure(fn, runs=1, warmup=1, ops=ops)
    if ops.memory_method == "vmhwm":  # ru_maxrss cannot be reset, so only a lower bound
        assert timing.peak_memory_bytes >= 0.9 * size
    assert timing.memory_method == ops.memory_method


def _vmhwm_ops() -> CpuOps:
    ops = CpuOps()
    if ops.memory_method != "vmhwm":
        pytest.skip("VmHWM cannot be reset here (no /proc/self/clear_refs)")
    return ops


def test_cpu_peak_memory_is_not_hidden_by_garbage_freed_in_the_window():
    """Garbage left by earlier work, freed by a collection that runs during the warm-up, used to
    offset the growth: 128 MB freed there hid a 64 MB allocation (growth 0)."""
    ops = _vmhwm_ops()
    size = 64 * 2**20
    junk: list = [np.ones(2 * size, dtype=np.uint8)]
    junk.append(junk)  # a reference cycle: only the garbage collector frees it
    del junk
    kept = []

    def fn():
        if not kept:
            gc.collect()  # as an automatic collection would, at any allocation
            kept.append(np.ones(size, dtype=np.uint8).sum())

    assert measure(fn, runs=1, warmup=1, ops=ops).peak_memory_bytes >= 0.9 * size


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc behaviour")
def test_cpu_peak_memory_counts_memory_malloc_had_kept_resident():
    """Blocks freed into malloc's free lists stay resident; calls reusing them used to read as no
    growth at all."""
    ops = _vmhwm_ops()
    block = 4 * 2**20  # under malloc's mmap threshold once a block of this size has been freed
    bytearray(block)
    earlier = [bytearray(b"\1" * block) for _ in range(24)]
    last = earlier.pop()  # keeps the heap from shrinking at its top
    del earlier
    kept = []

    def fn():
        if not kept:
            kept.extend(bytearray(b"\2" * block) for _ in range(16))

    timing = measure(fn, runs=1, warmup=1, ops=ops)
    assert timing.peak_memory_bytes >= 0.9 * 16 * block
    del last


def test_backend_settings_are_set_recorded_and_restored():
    before = (
        torch.get_num_threads(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    )
    with backend_settings(threads=1, cudnn_benchmark=False, allow_tf32=True) as state:
        assert torch.get_num_threads() == 1
        assert state["threads"] == 1 and state["cudnn_benchmark"] is False
        assert state["cudnn_allow_tf32"] is True and state["matmul_allow_tf32"] is True
        timing = measure(lambda: None, runs=1, warmup=0)
        assert timing.backend["threads"] == 1
    after = (
        torch.get_num_threads(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    )
    assert after == before


def test_tf32_is_off_by_default():
    with backend_settings() as state:
        assert state["cudnn_allow_tf32"] is False and state["matmul_allow_tf32"] is False


def test_invalid_arguments():
    with pytest.raises(ValueError):
        measure_interleaved([], runs=1, warmup=0)
    with pytest.raises(ValueError):
        measure(lambda: None, runs=0, warmup=0)
