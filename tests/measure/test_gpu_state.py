"""NVML readings through a measurement (measure.gpu_state, measure.nvml) with fake pynvml modules:
current names, deprecated names only, a driver without the current functions, no NVML at all."""

from __future__ import annotations

import sys

import pytest
from _gpu_fakes import IDLE, POWER_CAP, THERMAL, FunctionNotFound, fake_nvml

from rexbench.measure.machine import gpu_state, nvml


def ticking():
    t = iter(range(1000))
    return lambda: float(next(t))


def test_sampler_reads_before_each_round_and_after_with_current_names():
    calls: list[str] = []
    nv = fake_nvml(calls, [0x0], violation_per_read_ns=5_000_000)
    sampler = gpu_state.GpuSampler("cuda:0", nv=nv, clock=ticking())
    sampler.start()
    sampler.sample("round 1")
    sampler.sample("round 2")
    result = sampler.stop()
    assert [s["when"] for s in result["samples"]] == ["before", "round 1", "round 2", "after"]
    first = result["samples"][0]
    assert first == {
        "when": "before",
        "t_s": 1.0,
        "temperature_c": 62,
        "sm_clock_mhz": 1980,
        "mem_clock_mhz": 2619,
        "power_w": 650.0,
        "throttle_mask": 0,
    }
    assert result["functions"] == {
        "reasons": "nvmlDeviceGetCurrentClocksEventReasons",
        "temperature": "nvmlDeviceGetTemperatureV",
    }
    assert (
        "temperature" not in calls
    )  # the deprecated call is never made when the current one works
    assert (
        result["nvml_index"] == 0 and result["matched_by"] == "index"
    )  # no torch UUID on a CPU build
    # counters, read after the start's probe of the reason function: 4 readings later, 4 x 5 ms
    # of thermal violation and 4 x 2 J
    assert result["thermal_violation_ns"] == 4 * 5_000_000 and result["power_violation_ns"] == 0
    assert result["energy_j"] == pytest.approx(8.0)
    assert result["error"] is None and calls[0] == "init" and calls[-1] == "shutdown"


def test_deprecated_names_only():
    calls: list[str] = []
    sampler = gpu_state.GpuSampler("cuda", nv=fake_nvml(calls, [THERMAL], current=False))
    sampler.start()
    result = sampler.stop()
    assert result["functions"] == {
        "reasons": "nvmlDeviceGetCurrentClocksThrottleReasons",
        "temperature": "nvmlDeviceGetTemperature",
    }
    assert result["samples"][0]["temperature_c"] == 61
    assert result["samples"][0]["throttle_mask"] == THERMAL


def test_driver_without_the_current_functions_falls_back():
    """pynvml has the new names, but the driver library lacks them: FunctionNotFound at call time."""

    def missing(*args):
        raise FunctionNotFound("Function Not Found")

    calls: list[str] = []
    nv = fake_nvml(
        calls,
        [0],
        nvmlDeviceGetCurrentClocksEventReasons=missing,
        nvmlDeviceGetTemperatureV=missing,
    )
    reading = nvml.read_volatile(nv, "handle0")
    assert reading["temperature_c"] == 61 and reading["throttle_mask"] == 0
    value, name = nvml.first_answer(nv, nvml.REASON_FUNCTIONS, "handle0")
    assert (value, name) == (0, "nvmlDeviceGetCurrentClocksThrottleReasons")


def test_unsupported_counters_are_none():
    def unsupported(*args):
        raise RuntimeError("Not Supported")

    nv = fake_nvml(
        [],
        [0],
        nvmlDeviceGetViolationStatus=unsupported,
        nvmlDeviceGetTotalEnergyConsumption=unsupported,
    )
    assert nvml.read_counters(nv, "h") == {
        "power_violation_ns": None,
        "thermal_violation_ns": None,
        "energy_mj": None,
    }
    sampler = gpu_state.GpuSampler("cuda:0", nv=nv)
    sampler.start()
    result = sampler.stop()
    assert result["thermal_violation_ns"] is None and result["energy_j"] is None
    assert gpu_state.slowdown(result) == []


def test_no_pynvml_or_no_driver_gives_a_reason_and_no_readings(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    sampler = gpu_state.GpuSampler("cuda:0")
    sampler.start()
    sampler.sample("round 1")
    result = sampler.stop()
    assert result["samples"] == [] and "pynvml not installed" in result["error"]

    def no_driver():
        raise RuntimeError("Driver Not Loaded")

    sampler = gpu_state.GpuSampler("cuda:0", nv=fake_nvml([], [0], nvmlInit=no_driver))
    sampler.start()
    assert sampler.stop()["error"] == "NVML unavailable: Driver Not Loaded"


def test_device_matched_by_uuid_when_torch_gives_one(monkeypatch):
    monkeypatch.setattr(gpu_state, "_torch_uuid", lambda index: "GPU-1234")
    nv = fake_nvml(
        [],
        [0],
        nvmlDeviceGetHandleByUUID=lambda uuid: f"by-{uuid}",
        nvmlDeviceGetIndex=lambda handle: 3,
    )
    assert gpu_state.nvml_handle(nv, "cuda:1") == ("by-GPU-1234", 3, "uuid")


def test_slowdown_reasons_and_violation_time():
    def reading(mask):
        return {"when": "round", "sm_clock_mhz": 1500, "throttle_mask": mask}

    idle = {"samples": [reading(IDLE), reading(0)], "wall_s": 10.0, "thermal_violation_ns": 0}
    assert gpu_state.slowdown(idle) == []  # idle clocks are no slowdown
    hot = {"samples": [reading(0), reading(THERMAL | POWER_CAP), reading(THERMAL)], "wall_s": 10.0}
    assert gpu_state.slowdown(hot) == [
        "sw_power_cap in 1 of 3 readings",
        "hw_thermal_slowdown in 2 of 3 readings",
    ]
    # NVML's counters catch a slowdown between readings: 0.5 s of 10 s
    counted = {"samples": [reading(0)], "wall_s": 10.0, "power_violation_ns": 500_000_000}
    assert gpu_state.slowdown(counted) == ["power violation 5.0% of the time"]
    assert gpu_state.slowdown({"samples": [], "wall_s": 10.0, "power_violation_ns": 10**6}) == []
    assert gpu_state.clock_range({"samples": [reading(0), {"sm_clock_mhz": 1980}]}) == (1500, 1980)
    assert gpu_state.slowdown(None) == [] and gpu_state.clock_range(None) is None


def test_fingerprint_reading_uses_current_names_with_fallback():
    nv = fake_nvml([], [POWER_CAP])
    assert nvml.read_volatile(nv, "h")["temperature_c"] == 62
    old = fake_nvml([], [POWER_CAP], current=False)
    assert nvml.read_volatile(old, "h")["throttle_reasons"] == ["sw_power_cap"]
