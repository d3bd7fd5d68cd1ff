"""A GPU run whose clocks were lowered by power or temperature is never a pass or a regression for
the gate: inconclusive, on either side of the comparison (gate.evaluate.slowdown_guard)."""

from __future__ import annotations

from _gate_data import record

from rexbench.gate import checks as gate
from rexbench.gate.evaluate import GateOptions, evaluate_model

OPTIONS = GateOptions(tuple(gate.merge_checks(gate.DEFAULT_CHECKS)))
THERMAL = 0x40


def throttled(rec, mask=THERMAL):
    """`rec` with NVML readings in its validity, every one showing `mask`."""
    readings = [
        {"when": w, "sm_clock_mhz": 1200, "throttle_mask": mask}
        for w in ("before", "round 1", "after")
    ]
    rec.timing.validity = {"gpu": {"source": "nvml", "samples": readings, "wall_s": 5.0}}
    return rec


def latency(current, baseline):
    verdicts, _ = evaluate_model("rexnet_x1.0", OPTIONS, current=[current], baselines=[baseline])
    return verdicts[-1]


def test_a_throttled_regression_is_inconclusive():
    assert latency(record(48.0, seed=2), record(40.0, seed=1)).outcome == gate.REGRESSION
    v = latency(throttled(record(48.0, seed=2)), record(40.0, seed=1))
    assert v.outcome == gate.INCONCLUSIVE and v.ratio > 1.1
    assert "GPU clocks were lowered by power or temperature during the current run" in v.reason
    assert v.details["gpu_slowdown"] == {"current run": "hw_thermal_slowdown in 3 of 3 readings"}


def test_a_pass_against_a_throttled_baseline_is_inconclusive():
    assert latency(record(40.0, seed=2), record(40.0, seed=1)).outcome == gate.PASS
    v = latency(record(40.0, seed=2), throttled(record(40.0, seed=1), mask=0x4))
    assert v.outcome == gate.INCONCLUSIVE and "during the baseline: sw_power_cap" in v.reason


def test_idle_clocks_are_not_a_slowdown():
    v = latency(throttled(record(40.0, seed=2), mask=0x1), record(40.0, seed=1))
    assert v.outcome == gate.PASS and "gpu_slowdown" not in v.details
