"""Measurement validity recorded with the samples (measure.validity, the rounds, the L2 flush):
GPU readings before / per round / after through a fake pynvml, a throttled run marked, recompiles
counted per runner, the L2 flush queued before each start event. Fake GPU, scripted clocks."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest
import torch
from _gpu_fakes import THERMAL, fake_nvml
from _profile_fakes import (
    FakeCudaOps,
    ScriptedClock,
    fake_cuda,
    fake_parts,
    write_tiny,
)

from rexbench.errors import RexbenchError
from rexbench.measure.checks import validity
from rexbench.measure.config import ConfigOptions, RunConfig, build_configs
from rexbench.measure.run.profile import profile_models
from rexbench.measure.timing import l2flush
from rexbench.measure.timing.loop import ProgressEvent, Runner, measure_interleaved
from rexbench.records.schema import Record
from rexbench.records.store import load_record


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    return "py:nets.py:Tiny"


class FakeSampler:
    def __init__(self) -> None:
        self.log: list[str] = []

    def start(self) -> None:
        self.log.append("start")

    def sample(self, when: str) -> None:
        self.log.append(when)

    def stop(self) -> dict:
        self.log.append("stop")
        return {"source": "fake", "samples": [], "error": None}


def test_round_watch_reads_the_gpu_once_per_round_and_counts_recompiles():
    sampler, counters = FakeSampler(), {"graphs": 0, "cudagraph_skips": 0}
    names = ["compile_cl", "eager", "anchor:conv4"]
    watch = validity.RoundWatch(
        "cuda:0", names, ["compile_cl"], sampler=sampler, read_counters=lambda: dict(counters)
    )
    watch.start()
    for name in names:
        watch.on_event(ProgressEvent("warmup", name, 2, 2))
    for r in range(2):  # two rounds of three chunks; the compiled runner recompiles in round 2
        for k in range(3):
            if r == 1 and names[k] == "compile_cl":
                counters["graphs"] += 1
            watch.on_event(ProgressEvent("timing", names[k], r + 1, 2))
    watch.finish()
    assert sampler.log == ["start", "round 1", "round 2", "stop"]
    assert watch.validity("compile_cl") == {
        "gpu": {"source": "fake", "samples": [], "error": None},
        "recompiles": {"warmup_graphs": 0, "timing_graphs": 1, "cudagraph_skips": 0},
    }
    assert "recompiles" not in watch.validity("eager")  # not compiled: nothing to count
    cpu = validity.RoundWatch("cpu", names)
    assert cpu.sampler is None and cpu.compile_watch is None and cpu.validity("eager") == {}


def test_profile_on_a_fake_gpu_records_readings_and_marks_a_throttled_run(
    tiny, monkeypatch, tmp_path
):
    parts = fake_cuda(monkeypatch, FakeCudaOps())
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], [THERMAL]))
    config = RunConfig.preset("eager", device="cuda")
    (record,) = profile_models(
        [tiny], [config], runs=4, warmup=1, round_size=2, out_dir=tmp_path / "results", parts=parts
    )
    gpu = record.timing.validity["gpu"]
    assert [s["when"] for s in gpu["samples"]] == ["before", "round 1", "round 2", "after"]
    assert gpu["functions"]["reasons"] == "nvmlDeviceGetCurrentClocksEventReasons"
    assert all(s["throttle_mask"] == THERMAL for s in gpu["samples"])
    assert any(
        w.startswith("GPU slowdown: hw_thermal_slowdown in 4 of 4 readings")
        for w in record.warnings
    )
    assert validity.slowdown_of(record) == "hw_thermal_slowdown in 4 of 4 readings"
    assert "recompiles" not in record.timing.validity  # eager
    assert record.timing.preparation["input_channels_last"] is False
    assert record.timing.preparation["input_dtype"] == "float32"
    back = load_record(next((tmp_path / "results").rglob("*.json")))
    assert back.timing.validity == record.timing.validity
    assert validity.slowdown_of(back) is not None


def test_a_cool_gpu_is_not_marked(tiny, monkeypatch):
    parts = fake_cuda(monkeypatch, FakeCudaOps())
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], [0x0]))
    config = RunConfig.preset("eager", device="cuda")
    (record,) = profile_models([tiny], [config], runs=2, warmup=0, parts=parts)
    assert validity.slowdown_of(record) is None
    assert not any("GPU slowdown" in w for w in record.warnings)


def test_old_records_without_validity_still_load():
    record = Record.from_dict(
        {
            **_minimal_record(),
            "timing": {
                "samples_ns": [1, 2],
                "warmup_ns": [],
                "clock": "cuda_event",
                "compile_s": None,
                "peak_memory_bytes": None,
                "peak_memory_kind": None,
                "device_start": None,
                "device_end": None,
            },
        }
    )
    assert record.timing.validity == {}
    assert validity.slowdown_of(record) is None and validity.recompiled_of(record) == 0


def _minimal_record() -> dict:
    config = RunConfig.preset("eager", device="cuda")
    return {
        "schema_version": 1,
        "kind": "profile",
        "rexbench_version": "0.1.0",
        "created": "2026-01-01T00:00:00+00:00",
        "model": {"spec": "rexnet_x1.0", "source": "zoo", "kwargs": {}, "provenance": {}},
        "run": {"config": config.to_dict(), "label": config.label, "config_id": config.config_id},
        "env": {"machine_id": "m"},
        "counts": {},
        "summary": {},
        "warnings": [],
    }


# ------------------------------------------------------------------------------ the L2 flush


def test_flush_l2_is_cuda_only_and_part_of_the_identity_only_when_on():
    with pytest.raises(RexbenchError, match="--flush-l2 .* needs --device cuda"):
        RunConfig(flush_l2=True)
    off, on = RunConfig(device="cuda"), RunConfig(device="cuda", flush_l2=True)
    assert off.config_id != on.config_id and on.label == off.label
    (config,), _ = build_configs(ConfigOptions(device="cuda", flush_l2=True, names=["eager"]))
    assert config.flush_l2 and RunConfig.from_dict(config.to_dict()) == config


def test_flusher_overwrites_its_buffer():
    flush = l2flush.make_flusher("cpu", nbytes=4096)
    assert flush.info == {"bytes": 4096, "l2_bytes": None}
    flush()  # zeroes 4 KiB on the CPU: no error is all there is to see
    assert l2flush.l2_bytes("cuda:0") is None  # no GPU here


def test_flush_runs_before_each_start_event_never_inside(tiny, monkeypatch):
    ops = FakeCudaOps()

    def fake_flusher(device, nbytes=None):
        def flush():
            ops.log.append("flush")

        flush.info = {"bytes": 512 * 2**20, "l2_bytes": 60 * 2**20}
        return flush

    parts = replace(fake_parts(base=fake_cuda(monkeypatch, ops)), make_flusher=fake_flusher)
    config = RunConfig.preset("eager", device="cuda", flush_l2=True)
    (record,) = profile_models([tiny], [config], runs=2, warmup=1, round_size=1, parts=parts)
    one = ["flush", "record", "call", "record", "synchronize", "elapsed"]
    model_calls = [i for i, entry in enumerate(ops.log) if entry == "flush"]
    assert len(model_calls) == 3  # warm-up + 2 timed calls of the model, none for the anchor
    for i in model_calls:
        assert ops.log[i : i + 6] == one
    assert record.timing.validity["l2_flush"] == {"bytes": 512 * 2**20, "l2_bytes": 60 * 2**20}
    assert record.run.config["flush_l2"] is True


def test_before_call_runs_outside_the_timed_region_on_the_cpu():
    clock, log = ScriptedClock(), []
    runner = Runner("m", lambda: log.append("call"), before_call=lambda: log.append("before"))
    (result,) = measure_interleaved([runner], 3, 1, clock=clock)
    assert log == ["before", "call"] * 4
    assert clock.reads == 2 * 4  # the hook reads no clock: samples hold the calls alone
    assert torch.is_inference_mode_enabled() is False
