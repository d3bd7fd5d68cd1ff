"""A fake nvidia-ml-py (pynvml) module, shared by the NVML, validity and GPU check tests."""

from __future__ import annotations

import types
from types import SimpleNamespace

THERMAL, POWER_CAP, IDLE = 0x40, 0x4, 0x1


class FunctionNotFound(Exception):
    """What pynvml raises when the driver's library lacks a function (NVMLError_FunctionNotFound)."""


def fake_nvml(
    calls: list[str],
    masks: list[int],
    *,
    current: bool = True,
    violation_per_read_ns: int = 0,
    **overrides,
):
    """A pynvml with one device. masks: the clock event reasons of successive readings (the last
    repeats); each reading adds `violation_per_read_ns` of thermal violation time and 2 J of
    energy. current: has the current names (ClocksEventReasons, TemperatureV)."""
    nv = types.ModuleType("pynvml")
    state = {"reads": 0, "violation": 0, "energy": 1_000_000}

    def reasons(handle):
        calls.append("reasons")
        mask = masks[min(state["reads"], len(masks) - 1)]
        state["reads"] += 1
        state["violation"] += violation_per_read_ns
        state["energy"] += 2_000
        return mask

    def violation(handle, policy):
        value = state["violation"] if policy == nv.NVML_PERF_POLICY_THERMAL else 0
        return SimpleNamespace(referenceTime=0, violationTime=value)

    vars(nv).update(
        NVML_TEMPERATURE_GPU=0,
        NVML_CLOCK_SM=1,
        NVML_CLOCK_MEM=2,
        NVML_PERF_POLICY_POWER=0,
        NVML_PERF_POLICY_THERMAL=1,
        nvmlInit=lambda: calls.append("init"),
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlSystemGetDriverVersion=lambda: "570.86.15",
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetName=lambda h: "NVIDIA H200",
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(total=150_754_820_096),
        nvmlDeviceGetHandleByIndex=lambda i: f"handle{i}",
        nvmlDeviceGetClockInfo=lambda h, kind: {1: 1980, 2: 2619}[kind],
        nvmlDeviceGetPowerUsage=lambda h: 650_000,
        nvmlDeviceGetViolationStatus=violation,
        nvmlDeviceGetTotalEnergyConsumption=lambda h: state["energy"],
        nvmlDeviceGetCurrentClocksThrottleReasons=reasons,
        nvmlDeviceGetTemperature=lambda h, sensor: (calls.append("temperature"), 61)[1],
    )
    if current:
        vars(nv).update(
            nvmlDeviceGetCurrentClocksEventReasons=reasons,
            nvmlDeviceGetTemperatureV=lambda h, sensor: (calls.append("temperatureV"), 62)[1],
        )
    vars(nv).update(overrides)
    return nv
