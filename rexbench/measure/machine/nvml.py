"""GPU readings through NVML (nvidia-ml-py's pynvml): names, memory, clocks, power, temperature and
clock event ("throttle") reasons. No library, no driver or any NVML error gives no GPUs and the
reason, never an exception; pynvml is imported inside `query_gpus`.

Current NVML names first, the deprecated ones as fallbacks (NVML API reference, "Deprecated List"):
nvmlDeviceGetCurrentClocksEventReasons (was nvmlDeviceGetCurrentClocksThrottleReasons) and
nvmlDeviceGetTemperatureV with an nvmlTemperature_v1 struct (was nvmlDeviceGetTemperature). A name
is tried when this pynvml has it and skipped when the driver lacks the function
(NVMLError_FunctionNotFound) or the device does not support it, so old drivers still answer.
"""

from __future__ import annotations

import contextlib
from typing import Any

#: Clock event ("throttle") reason bits, from NVML's nvml.h (nvmlClocksEventReason* constants).
THROTTLE_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


#: The bits that mean the clocks were lowered by power or temperature (nvmlClocksEventReason* docs):
#: a run measured with any of them set is not comparable with one without (rexbench.measure.machine.gpu_state).
SLOWDOWN_REASONS = (
    "sw_power_cap",
    "hw_slowdown",
    "sw_thermal_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
)
REASON_FUNCTIONS = (
    "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetCurrentClocksThrottleReasons",
)
TEMPERATURE_FUNCTIONS = ("nvmlDeviceGetTemperatureV", "nvmlDeviceGetTemperature")


def first_answer(
    nv: Any, names: tuple[str, ...], handle: Any, *args: Any
) -> tuple[Any, str | None]:
    """(value, function name) of the first of `names` this pynvml has and the driver answers;
    (None, None) when none does (missing in an old pynvml, FunctionNotFound in an old driver,
    NotSupported on this device)."""
    for name in names:
        fn = getattr(nv, name, None)
        if fn is None:
            continue
        try:
            return fn(handle, *args), name
        except Exception:  # NVMLError_FunctionNotFound, NVMLError_NotSupported, ...
            continue
    return None, None


def decode_throttle_reasons(mask: int) -> list[str]:
    """Names of the set bits of an NVML clocks event/throttle reason mask; unknown bits in hex."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    unknown = mask & ~sum(THROTTLE_REASONS)
    if unknown:
        names.append(f"unknown_{unknown:#x}")
    return names


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_gpu(nv: Any, handle: Any, static: bool) -> dict[str, Any]:
    """One device's readings; a field the device does not support becomes None, not an error."""

    def get(fn: str, *args: Any) -> Any:
        try:
            return getattr(nv, fn)(handle, *args)
        except Exception:  # NVMLError_NotSupported and friends: keep the other fields
            return None

    mask, _ = first_answer(nv, REASON_FUNCTIONS, handle)
    temperature, _ = first_answer(nv, TEMPERATURE_FUNCTIONS, handle, nv.NVML_TEMPERATURE_GPU)
    power_mw = get("nvmlDeviceGetPowerUsage")
    out: dict[str, Any] = {
        "temperature_c": temperature,
        "sm_clock_mhz": get("nvmlDeviceGetClockInfo", nv.NVML_CLOCK_SM),
        "mem_clock_mhz": get("nvmlDeviceGetClockInfo", nv.NVML_CLOCK_MEM),
        "power_w": power_mw / 1000 if power_mw is not None else None,
        "throttle_mask": mask,
        "throttle_reasons": decode_throttle_reasons(mask) if mask is not None else None,
    }
    if static:
        name = get("nvmlDeviceGetName")
        memory = get("nvmlDeviceGetMemoryInfo")
        limit_mw = get("nvmlDeviceGetPowerManagementLimit")
        out = {
            "name": _text(name) if name is not None else None,
            "memory_total_bytes": memory.total if memory is not None else None,
            "sm_clock_max_mhz": get("nvmlDeviceGetMaxClockInfo", nv.NVML_CLOCK_SM),
            "mem_clock_max_mhz": get("nvmlDeviceGetMaxClockInfo", nv.NVML_CLOCK_MEM),
            "power_limit_w": limit_mw / 1000 if limit_mw is not None else None,
            **out,
        }
    return out


def read_volatile(nv: Any, handle: Any) -> dict[str, Any]:
    """Temperature, clocks, power and clock event reasons of one device now."""
    return _read_gpu(nv, handle, static=False)


def read_counters(nv: Any, handle: Any) -> dict[str, Any]:
    """NVML's cumulative counters: the time the clocks were held down by the power and the thermal
    policy (nvmlDeviceGetViolationStatus, violationTime in ns) and the energy used since the driver
    loaded (nvmlDeviceGetTotalEnergyConsumption, mJ). Differences over a run say how much of it was
    slowed down, whenever NVML was asked; None where unsupported."""
    out: dict[str, Any] = {}
    for key, policy in (
        ("power_violation_ns", "NVML_PERF_POLICY_POWER"),
        ("thermal_violation_ns", "NVML_PERF_POLICY_THERMAL"),
    ):
        try:
            out[key] = int(
                nv.nvmlDeviceGetViolationStatus(handle, getattr(nv, policy)).violationTime
            )
        except Exception:
            out[key] = None
    try:
        out["energy_mj"] = int(nv.nvmlDeviceGetTotalEnergyConsumption(handle))
    except Exception:
        out["energy_mj"] = None
    return out


def query_gpus(static: bool) -> tuple[list[dict[str, Any]], str | None]:
    """All NVML devices, or ([], reason) when NVML is missing or fails."""
    try:
        import pynvml as nv
    except ImportError:
        return [], "pynvml not installed (pip install nvidia-ml-py)"
    try:
        nv.nvmlInit()
    except Exception as exc:
        return [], f"NVML unavailable: {exc}"
    try:
        driver = _text(nv.nvmlSystemGetDriverVersion()) if static else None
        gpus = []
        for index in range(nv.nvmlDeviceGetCount()):
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            gpu = {"index": index, **_read_gpu(nv, handle, static)}
            if static:
                gpu["driver"] = driver
            gpus.append(gpu)
        return gpus, None
    except Exception as exc:
        return [], f"NVML error: {exc}"
    finally:
        with contextlib.suppress(Exception):
            nv.nvmlShutdown()
