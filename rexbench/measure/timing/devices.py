"""What the timing loop needs from a device, and the CPU and CUDA implementations: synchronisation,
CUDA events, peak memory over the warm-up, out-of-memory recognition.

CPU peak memory is resident-set growth read from /proc/self/status (proc(5)); CUDA peak memory is
torch.cuda.max_memory_allocated after reset_peak_memory_stats (torch.cuda memory management docs).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import resource
import sys
from pathlib import Path
from typing import Any, Protocol

from rexbench.errors import RexbenchError


class Event(Protocol):
    def record(self) -> None: ...
    def elapsed_time(self, end: Event) -> float: ...  # milliseconds, as torch.cuda.Event


class DeviceOps(Protocol):
    """What the timing loop needs from a device. `uses_events` picks the event path over the clock."""

    name: str
    uses_events: bool
    clock_name: str
    memory_method: str | None

    def scope(self) -> contextlib.AbstractContextManager[Any]: ...
    def synchronize(self) -> None: ...
    def event(self) -> Event: ...
    def begin_memory(self) -> None: ...
    def end_memory(self) -> int | None: ...
    def is_oom(self, exc: BaseException) -> bool: ...
    def after_oom(self) -> None: ...


def _proc_status_kib(key: str) -> int | None:
    """A `VmXXX:  N kB` line of /proc/self/status in KiB, or None where there is no procfs."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _maxrss_bytes() -> int:
    """Lifetime peak RSS from getrusage: KiB on Linux, bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def release_free_memory() -> None:
    """Free what is garbage already and give the allocator's free pages back to the kernel, so that
    a memory window opened next starts from the memory really in use (see `CpuOps`).

    gc.collect(): cyclic garbage of earlier work is freed now, not by an automatic collection that
    happens to run inside the window. malloc_trim(0) (glibc, malloc_trim(3)): free blocks that
    malloc keeps resident are returned, so the measured calls cannot reuse them unseen.
    """
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc (musl): nothing to trim
            ctypes.CDLL(None).malloc_trim(0)


class CpuOps:
    """CPU: perf_counter_ns timing; memory = peak resident-set growth over the measured calls.

    Linux: writing "5" to /proc/self/clear_refs resets VmHWM (the RSS high-water mark) to the
    current RSS (proc(5), since Linux 4.0); growth = VmHWM after - VmRSS before ("vmhwm").
    Elsewhere, or if the reset is refused, the lifetime peak ru_maxrss is used: growth =
    ru_maxrss after - ru_maxrss before ("ru_maxrss"), a lower bound that reads 0 when the process
    had already peaked higher earlier.

    The kernel keeps one high-water mark of the whole RSS, raised lazily (when memory is unmapped;
    VmHWM = max(that mark, current RSS)), so memory freed inside the window offsets the growth: an
    automatic garbage collection freeing X bytes of earlier garbage during the warm-up, or calls
    reusing X bytes that malloc had kept resident after earlier work, hide an allocation of up to X
    bytes, which then reads as a growth of 0. `begin_memory` therefore releases both
    (`release_free_memory`) before it resets the mark and reads the baseline.
    """

    name = "cpu"
    uses_events = False
    clock_name = "perf_counter_ns"

    def __init__(self) -> None:
        self.memory_method: str | None = "vmhwm" if self._reset_hwm() else "ru_maxrss"
        self._before = 0

    @staticmethod
    def _reset_hwm() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            return False
        return _proc_status_kib("VmHWM") is not None

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        pass

    def event(self) -> Event:
        raise NotImplementedError("CPU timing uses the clock, not events")

    def begin_memory(self) -> None:
        release_free_memory()
        if self.memory_method == "vmhwm" and self._reset_hwm():
            self._before = (_proc_status_kib("VmRSS") or 0) * 1024
        else:
            self.memory_method = "ru_maxrss"
            self._before = _maxrss_bytes()

    def end_memory(self) -> int | None:
        if self.memory_method == "vmhwm":
            peak = (_proc_status_kib("VmHWM") or 0) * 1024
        else:
            peak = _maxrss_bytes()
        return max(0, peak - self._before)

    def is_oom(self, exc: BaseException) -> bool:
        return isinstance(exc, MemoryError) or (
            isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)
        )

    def after_oom(self) -> None:
        pass


class CudaOps:
    """CUDA: event pairs + synchronize on the chosen device; memory = torch.cuda.max_memory_allocated
    after reset_peak_memory_stats (weights, activations and workspaces: everything the caching
    allocator handed out)."""

    uses_events = True
    clock_name = "cuda_event"
    memory_method = "cuda_max_memory_allocated"

    def __init__(self, device: str = "cuda") -> None:
        import torch

        self._torch = torch
        self._device = torch.device(device)
        self.name = str(self._device)

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        return self._torch.cuda.device(self._device)

    def synchronize(self) -> None:
        self._torch.cuda.synchronize(self._device)

    def event(self) -> Event:
        return self._torch.cuda.Event(enable_timing=True)

    def begin_memory(self) -> None:
        self.synchronize()
        self._torch.cuda.reset_peak_memory_stats(self._device)

    def end_memory(self) -> int | None:
        self.synchronize()
        return int(self._torch.cuda.max_memory_allocated(self._device))

    def is_oom(self, exc: BaseException) -> bool:
        return isinstance(exc, self._torch.cuda.OutOfMemoryError)

    def after_oom(self) -> None:
        self._torch.cuda.empty_cache()


def device_ops(device: str) -> DeviceOps:
    """The DeviceOps for "cpu", "cuda" or "cuda:N"."""
    return CudaOps(device) if device.startswith("cuda") else CpuOps()


def oom_error(device: str, batch_size: int, what: str) -> RexbenchError:
    """The one-line out-of-memory error with retry advice."""
    hint = f"e.g. --batch-size {batch_size // 2}" if batch_size > 1 else "or a smaller --resolution"
    return RexbenchError(
        f"out of memory on {device} while running {what} at batch size {batch_size}; "
        f"retry with a smaller --batch-size ({hint})"
    )
