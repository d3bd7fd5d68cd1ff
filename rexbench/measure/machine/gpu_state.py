"""The state of the measured GPU through a measurement: NVML readings before it, once per interleaved
round during it, and after it, plus NVML's cumulative power/thermal violation and energy counters
over the whole of it; and the verdict drawn from them, whether the clocks were held down.

A run whose clocks were lowered by power or temperature (the `nvml.SLOWDOWN_REASONS` bits in any
reading, or NVML's power/thermal violation time over VIOLATION_FRACTION of the run) is marked: its
records carry a warning and the gate calls any comparison with it inconclusive. Readings are taken
between timing chunks, never inside a timed region. No pynvml, no driver, or a device NVML cannot
match leaves `error` set and no readings, never an exception.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable
from typing import Any

from rexbench.measure.machine.nvml import (
    REASON_FUNCTIONS,
    SLOWDOWN_REASONS,
    TEMPERATURE_FUNCTIONS,
    decode_throttle_reasons,
    first_answer,
    read_counters,
    read_volatile,
)

#: Power or thermal violation time over this fraction of the run's wall time marks it as slowed down.
VIOLATION_FRACTION = 0.01
_KEEP = ("temperature_c", "sm_clock_mhz", "mem_clock_mhz", "power_w", "throttle_mask")


def _torch_uuid(index: int) -> str | None:
    """The CUDA device's UUID as NVML writes it ("GPU-..."), or None where torch does not say."""
    try:
        import torch

        uuid = str(torch.cuda.get_device_properties(index).uuid)
    except Exception:
        return None
    return uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"


def nvml_handle(nv: Any, device: str) -> tuple[Any, int | None, str]:
    """(handle, NVML index, how matched) of a torch device "cuda:N": by UUID where torch gives one
    (CUDA and NVML may number GPUs differently, e.g. under CUDA_VISIBLE_DEVICES), else by index."""
    index = int(device.partition(":")[2] or 0)
    uuid = _torch_uuid(index)
    if uuid is not None:
        with contextlib.suppress(Exception):
            handle = nv.nvmlDeviceGetHandleByUUID(uuid)
            nvml_index = None
            with contextlib.suppress(Exception):
                nvml_index = int(nv.nvmlDeviceGetIndex(handle))
            return handle, nvml_index, "uuid"
    return nv.nvmlDeviceGetHandleByIndex(index), index, "index"


class GpuSampler:
    """NVML readings of one CUDA device: `start()` (reading "before" and the counters), `sample(when)`
    between chunks, `stop()` (reading "after", counter differences) -> the dict a record stores.

    nv: a pynvml module (default: import pynvml); clock: seconds, for the readings' times.
    """

    def __init__(
        self, device: str, nv: Any = None, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.device = device
        self.samples: list[dict[str, Any]] = []
        self.error: str | None = None
        self._nv, self._clock, self._handle = nv, clock, None
        self._t0 = 0.0
        self._counters: dict[str, Any] = {}
        self._info: dict[str, Any] = {}

    def start(self) -> None:
        try:
            nv = self._nv if self._nv is not None else importlib.import_module("pynvml")
        except ImportError:
            self.error = "pynvml not installed (pip install nvidia-ml-py)"
            return
        try:
            nv.nvmlInit()
        except Exception as exc:
            self.error = f"NVML unavailable: {exc}"
            return
        self._nv = nv
        try:
            self._handle, index, matched = nvml_handle(nv, self.device)
        except Exception as exc:
            self.error = f"NVML has no device for {self.device}: {exc}"
            self._shutdown()
            return
        _, reasons = first_answer(nv, REASON_FUNCTIONS, self._handle)
        _, temperature = first_answer(
            nv, TEMPERATURE_FUNCTIONS, self._handle, nv.NVML_TEMPERATURE_GPU
        )
        self._info = {
            "nvml_index": index,
            "matched_by": matched,
            "functions": {"reasons": reasons, "temperature": temperature},
        }
        self._t0 = self._clock()
        self._counters = read_counters(nv, self._handle)
        self.sample("before")

    def sample(self, when: str) -> None:
        """One reading now, labelled `when` ("before", "round 3", "after")."""
        if self._handle is None:
            return
        try:
            reading = read_volatile(self._nv, self._handle)
        except Exception as exc:  # keep measuring; say why a reading is missing
            self.samples.append({"when": when, "error": str(exc)})
            return
        t = round(self._clock() - self._t0, 4)
        self.samples.append({"when": when, "t_s": t, **{k: reading.get(k) for k in _KEEP}})

    def stop(self) -> dict[str, Any]:
        """The reading "after", the counters' differences, NVML shut down; the result."""
        if self._handle is None:
            return self.result()
        self.sample("after")
        wall = self._clock() - self._t0
        now = read_counters(self._nv, self._handle)
        self._shutdown()
        self._handle = None
        delta = {
            k: now[k] - self._counters[k]
            for k in now
            if now[k] is not None and self._counters.get(k) is not None
        }
        self._info.update(
            wall_s=wall,
            power_violation_ns=delta.get("power_violation_ns"),
            thermal_violation_ns=delta.get("thermal_violation_ns"),
            energy_j=delta["energy_mj"] / 1000 if "energy_mj" in delta else None,
        )
        return self.result()

    def result(self) -> dict[str, Any]:
        return {
            "source": "nvml",
            "device": self.device,
            "error": self.error,
            **self._info,
            "samples": list(self.samples),
        }

    def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self._nv.nvmlShutdown()


def slowdown(gpu: dict[str, Any] | None) -> list[str]:
    """Why the clocks of a sampled run count as lowered by power or temperature ([] = they do not):
    each slowdown reason with the number of readings that showed it, and violation time over
    VIOLATION_FRACTION of the run."""
    if not gpu:
        return []
    readings = [s for s in gpu.get("samples", []) if s.get("throttle_mask") is not None]
    seen: dict[str, int] = {}
    for s in readings:
        for reason in decode_throttle_reasons(int(s["throttle_mask"])):
            if reason in SLOWDOWN_REASONS:
                seen[reason] = seen.get(reason, 0) + 1
    out = [f"{r} in {n} of {len(readings)} readings" for r, n in seen.items()]
    wall = gpu.get("wall_s") or 0
    for kind in ("power", "thermal"):
        ns = gpu.get(f"{kind}_violation_ns")
        if ns and wall > 0 and ns / (wall * 1e9) >= VIOLATION_FRACTION:
            out.append(f"{kind} violation {ns / (wall * 1e9):.1%} of the time")
    return out


def clock_range(gpu: dict[str, Any] | None) -> tuple[int, int] | None:
    """(lowest, highest) SM clock in MHz over the readings, None without readings."""
    clocks = [s["sm_clock_mhz"] for s in (gpu or {}).get("samples", []) if s.get("sm_clock_mhz")]
    return (min(clocks), max(clocks)) if clocks else None
