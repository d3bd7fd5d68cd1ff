"""What reports and plots read from a record: its properties (rexbench.records.derived) on synthetic
records whose median latency and counts are known exactly."""

from __future__ import annotations

import pytest
from _synthetic import REFERENCE, env, make

from rexbench.records.derived import family, short_label, top1
from rexbench.records.schema import ModelInfo, Record, Timing


def test_latency_from_the_raw_samples():
    r = make("rexnet_x1.0", 40.0)
    lat = r.latency
    assert lat.median_ms == pytest.approx(40.0) and lat.n == 21 and lat.batch_size == 1
    assert lat.ci_low_ms < lat.median_ms < lat.ci_high_ms
    assert lat.throughput == pytest.approx(1000 / 40.0)
    assert set(lat.to_dict()) >= {"median_ms", "ci_low_ms", "ci_high_ms", "throughput", "noisy"}
    assert r.samples == list(r.timing.samples_ns)
    untimed = make("rexnet_x1.0", None)
    assert untimed.latency is None and untimed.samples == []


def test_settings_and_their_differences():
    cpu, gpu = make("rexnet_x1.0"), make("rexnet_x1.0", device="cuda", batch_size=64)
    assert (cpu.device, cpu.device_kind, cpu.dtype, cpu.batch_size) == ("cpu", "cpu", "fp32", 1)
    assert (gpu.device, gpu.device_kind, gpu.batch_size) == ("cuda", "cuda", 64)
    assert cpu.resolution == 224 and cpu.settings["config"] == "eager"
    assert gpu.latency.throughput == pytest.approx(64 * 1000 / 10.0)
    assert cpu.setting_differences(gpu) == ["batch_size 1 vs 64"]
    assert cpu.setting_differences(make("rexnet_x1.0")) == []


def test_counts_and_hardware():
    r = make("rexnet_x1.0")
    assert r.params == REFERENCE["rexnet_x1.0"]["params"]
    assert r.macs_conv == REFERENCE["rexnet_x1.0"]["macs_conv_at_resolution"]
    assert r.hardware == "Intel Xeon Test 1234"
    assert r.machine_label == "Intel Xeon Test 1234 (8 cores), torch 2.13.0"
    gpu = make("rexnet_x1.0", device="cuda:1", environment=env(gpus=[{"name": "A"}, {"name": "B"}]))
    assert gpu.hardware == "B" and gpu.machine_label.endswith("A + B, torch 2.13.0")
    assert make("rexnet_x1.0", device="cuda:3", environment=env(gpus=[{"name": "A"}])).hardware == (
        "unknown GPU"
    )


def test_model_properties():
    model = ModelInfo("rexnet_x1.0")
    assert (model.family, model.short_label, model.top1) == ("ReXNet", "x1.0", 77.9)
    assert model.zoo_entry is not None and model.zoo_entry.resolution == 224
    ext = ModelInfo("timm:resnet50", "timm")
    assert (ext.family, ext.short_label, ext.top1, ext.zoo_entry) == ("timm", ext.spec, None, None)
    specs = ("efficientnet_b3", "mobilenet_v3_large", "rexnet_lite_x1.0")
    assert [short_label(s) for s in specs] == ["B3", "V3-L", "lite x1.0"]
    assert family("efficientnet_b0") == "EfficientNet" and top1("efficientnet_b0") == 77.3


def test_resolution_falls_back_to_the_counted_input():
    r = make("timm:resnet50")
    r.counts = {"input_shape": [1, 3, 192, 192]}
    assert r.resolution == 192
    r.counts = {}
    assert r.resolution is None


def test_latest_and_by_machine():
    old = make("rexnet_x1.0", 50.0, created="2026-01-01T00:00:00+00:00")
    new = make("rexnet_x1.0", 40.0, created="2026-02-01T00:00:00+00:00")
    other = make("rexnet_x1.0", 30.0, machine="epyc-2c-bbbb0002")
    kept, dropped = Record.latest([old, new, other])
    assert kept == [new, other] and dropped == 1
    assert Record.by_machine([old, other, new]) == {
        "xeon-8c-aaaa0001": [old, new],
        "epyc-2c-bbbb0002": [other],
    }


def test_properties_are_not_stored():
    r = make("rexnet_x1.0")
    data = r.to_dict()
    assert "latency" not in data and "device" not in data and "family" not in data["model"]
    assert Record.from_dict(data) == r
    assert Record.from_dict(data).timing == Timing(r.timing.samples_ns, [1])
