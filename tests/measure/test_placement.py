"""rexbench.measure.machine.placement: the memory-stream probe and the signature that tells two placements
of the virtual CPUs apart (synthetic readings; one real probe on small buffers)."""

from __future__ import annotations

import pytest
import torch

from rexbench.measure.machine import placement


def readings(one_ms: float, many_ms: float, threads: int = 2, n: int = 5) -> dict:
    return {
        "version": 1,
        "threads": threads,
        "stream_mb": 16,
        "one_thread_ns": [int(one_ms * 1e6)] * n,
        "threads_ns": [int(many_ms * 1e6)] * n,
    }


def test_signature_is_the_ratio_of_medians():
    assert placement.signature(readings(1.5, 0.67)) == pytest.approx(0.67 / 1.5)
    data = readings(1.5, 1.15)
    data["threads_ns"][0] = 10**9  # one reading that straddled something: the median ignores it
    assert placement.signature(data) == pytest.approx(1.15 / 1.5)
    assert placement.signature(None) is None and placement.signature(readings(1, 1, n=0)) is None


def test_one_complex_against_two_is_a_mismatch_and_noise_is_not():
    shared, split = readings(1.5, 1.15), readings(1.5, 0.67)  # this project's machine, both states
    why = placement.mismatch(shared, split)
    assert why is not None and "0.77 then, 0.45 now" in why
    assert placement.mismatch(shared, readings(1.6, 1.2)) is None  # 2% apart: same placement
    assert placement.mismatch(shared, None) is None  # an unprobed side: nothing to compare
    assert placement.mismatch(readings(1.5, 1.15, threads=4), split) is None  # other threads


def test_probe_reads_both_thread_counts_and_restores_the_callers():
    torch.set_num_threads(1)
    probe = placement.Probe(threads=2, megabytes=1)
    probe.sample()
    probe.sample()
    assert torch.get_num_threads() == 1
    data = probe.to_dict()
    assert len(data["one_thread_ns"]) == len(data["threads_ns"]) == 2
    assert all(t > 0 for t in data["one_thread_ns"] + data["threads_ns"])
    probe.close()
    assert placement.signature(data) > 0
