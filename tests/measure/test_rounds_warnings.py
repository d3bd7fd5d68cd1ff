"""Warnings a record carries: more torch threads than usable cores is said, not silently accepted."""

from __future__ import annotations

from dataclasses import replace

from _synthetic import env, make

from rexbench.measure.checks.derived import derived


def test_threads_above_the_usable_cores_warn_and_the_warning_is_recorded() -> None:
    record = make("rexnet_x1.0", 10.0, environment=env(cores=2))
    record.timing = replace(record.timing, backend={"threads": 999})
    _, warnings = derived(record)
    (warning,) = [w for w in warnings if w.startswith("oversubscribed")]
    assert "999 torch threads on 2 usable core(s)" in warning and "--threads 2" in warning
    record.timing = replace(record.timing, backend={"threads": 2})
    assert not [w for w in derived(record)[1] if w.startswith("oversubscribed")]
