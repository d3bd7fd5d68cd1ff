"""The GPU check's measuring half (rexbench.gpucheck) on a fake GPU (tests/_profile_fakes.py, passed
as the check's parts): configurations, per-configuration failures, the interleaved-then-alone
fallback, the output check every record carries, timer agreement with scripted timers, the time
budget; and rexbench.measure.timing.agreement. torch.compile is stubbed (no real compile here)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace

import pytest
import torch
from _gpu_fakes import fake_nvml
from _profile_fakes import FakeCudaOps, fake_cuda, write_tiny

from rexbench.gpucheck.check import CheckParts, check_model
from rexbench.gpucheck.rows import FAIL, PASS, SKIP, WARN, CheckRow, record_rows
from rexbench.gpucheck.settings import CheckSettings, configs_for
from rexbench.measure.timing import agreement as agree
from rexbench.records.store import load_records

TINY = "py:nets.py:Tiny"
ALL_SIX = ["compile_cl", "eager", "max", "compile_cl+fp16", "compile_cl+bf16", "cudagraphs"]


@pytest.fixture
def fake_gpu(tmp_path, monkeypatch) -> CheckParts:
    """The parts of a fake GPU (tests/_profile_fakes.py) and timers that agree; a cool fake NVML,
    the Tiny model, no real compile."""
    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], [0x0]))
    monkeypatch.setattr(torch, "compile", lambda module, **kw: module)
    return CheckParts(fake_cuda(monkeypatch, FakeCudaOps()), scripted_arms(2.00, 2.01))


def scripted_arms(rexbench_ms: float, timer_ms: float):
    def arms(item, ops, settings):
        return [
            agree.Arm("rexbench", lambda n: [rexbench_ms * 1e6] * n),
            agree.Arm("torch.utils.benchmark.Timer", lambda n: [timer_ms * 1e6] * n, "rexbench"),
        ], [CheckRow("timer agreement", "vs triton", SKIP, "triton not usable")]

    return arms


def preparing(parts: CheckParts, change) -> CheckParts:
    """`parts` whose prepare hands every prepared configuration to change(config, prepared)."""
    prepare = parts.profile.prepare

    def changed(model, config, **kwargs):
        prepared = prepare(model, config, **kwargs)
        change(config, prepared)
        return prepared

    return replace(parts, profile=replace(parts.profile, prepare=changed))


def settings(tmp_path, **kw) -> CheckSettings:
    fields = {
        "runs": 4,
        "warmup": 1,
        "round_size": 2,
        "agreement_rounds": 2,
        "agreement_per_round": 3,
        "out_dir": tmp_path / "records",
        "headline": TINY,
    }
    return CheckSettings(**{**fields, **kw})


def by_check(rows, check):
    return [(r.subject.split(" ", 1)[1], r.status) for r in rows if r.check == check]


def test_configurations_of_the_headline_and_the_others():
    assert [c.label for c in configs_for("rexnet_x2.0", CheckSettings())] == ALL_SIX
    assert [c.label for c in configs_for("efficientnet_b3", CheckSettings())] == ["compile_cl"]
    config = configs_for("rexnet_x2.0", CheckSettings())[0]
    assert (config.device, config.batch_size, config.runs, config.warmup) == ("cuda", 64, 200, 20)
    assert config.cudnn_benchmark and not config.allow_tf32
    dry = configs_for("rexnet_x2.0", CheckSettings.dry())[0]
    assert (dry.device, dry.batch_size, dry.resolution) == ("cpu", 2, 32)


def test_a_model_on_the_fake_gpu_gives_records_and_passing_rows(fake_gpu, tmp_path):
    result = check_model(TINY, settings(tmp_path), parts=fake_gpu)
    assert len(result.records) == 6 and all(r.device_kind == "cuda" for r in result.records)
    assert len(list((tmp_path / "records").rglob("*.json"))) == 6
    for check in ("prepare", "profile", "parity", "gpu state"):
        assert by_check(result.rows, check) == [(label, PASS) for label in ALL_SIX], check
    compiled = [label for label in ALL_SIX if label != "eager"]
    assert by_check(result.rows, "recompiles") == [(label, PASS) for label in compiled]
    agreement = [r for r in result.rows if r.check == "timer agreement"]
    assert [r.status for r in agreement] == [SKIP, PASS]
    assert "ratio 0.9950 (-0.50%; within 3%: yes; n=6)" in agreement[1].detail
    parity = [r.detail for r in result.rows if r.check == "parity"]
    assert parity[1] == "ok (rel L2 0); limit 0.001 for fp32"  # eager: the reference's own code
    assert parity[0].startswith("ok (rel L2 ") and parity[0].endswith("; limit 0.001 for fp32")
    assert parity[4].endswith(" for bf16")
    gpu = [r.detail for r in result.rows if r.check == "gpu state"][0]
    assert "via nvmlDeviceGetCurrentClocksEventReasons and nvmlDeviceGetTemperatureV" in gpu
    assert "the record's median 2.000 ms" in agreement[1].detail
    profile = [r.detail for r in result.rows if r.check == "profile"][0]
    assert profile.startswith("median 2.000 ms") and "cuDNN benchmark on" in profile
    record = result.records[0]
    assert [s["when"] for s in record.timing.validity["gpu"]["samples"]][:2] == [
        "before",
        "round 1",
    ]


def test_every_record_carries_the_output_check_of_every_other_record(fake_gpu, tmp_path):
    """The check's records are profile's: checked against eager fp32 on redrawn weights before
    they are timed, and a configuration whose output is off is invalid on disk and fails its row."""

    def off_for_max(config, prepared):
        if config.label == "max":
            module = prepared.module
            prepared.module = lambda x: module(x) * 1.1

    result = check_model(TINY, settings(tmp_path), parts=preparing(fake_gpu, off_for_max))
    assert by_check(result.rows, "parity") == [
        (label, FAIL if label == "max" else PASS) for label in ALL_SIX
    ]
    (row,) = [r for r in result.rows if r.status == FAIL]
    assert row.detail == "INVALID (rel L2 0.1 > 0.001); limit 0.001 for fp32"
    stored = {r.run.label: r for r in load_records(tmp_path / "records")}
    assert sorted(stored) == sorted(ALL_SIX)
    assert [label for label, r in stored.items() if not r.valid] == ["max"]
    for record in stored.values():
        assert record.parity["weights"].startswith("random (seed 0): BatchNorm statistics")
        assert record.parity["reference"] == "eager fp32 on the CPU, same seeded input"
    on_disk = json.loads(next((tmp_path / "records").rglob("*__max__*.json")).read_text())
    assert on_disk["parity"]["valid"] is False


def test_disagreeing_timers_fail_on_a_gpu_and_warn_in_a_dry_run(fake_gpu, tmp_path):
    parts = replace(fake_gpu, timer_arms=scripted_arms(2.0, 2.2))
    rows = check_model(TINY, settings(tmp_path), parts=parts).rows
    (bad,) = [r for r in rows if r.check == "timer agreement" and r.status != SKIP]
    assert bad.status == FAIL and "within 3%: NO" in bad.detail
    rows = check_model(TINY, settings(tmp_path, dry_run=True), parts=parts).rows
    (warned,) = [r for r in rows if r.check == "timer agreement" and r.status != SKIP]
    assert warned.status == WARN and "not judged" in warned.detail


def test_one_failing_configuration_is_one_line_and_the_rest_go_on(fake_gpu, tmp_path):
    def broken_fold(config, prepared):
        if config.fold_bn:
            raise RuntimeError("fold exploded\nsecond line")

    result = check_model(TINY, settings(tmp_path), parts=preparing(fake_gpu, broken_fold))
    assert ("max", FAIL) in by_check(result.rows, "prepare")
    (row,) = [r for r in result.rows if r.status == FAIL]
    assert row.detail == (
        f"{TINY} could not be prepared as max (PyTorch {torch.__version__}): "
        "RuntimeError: fold exploded; "
        "try --config eager or --no-compile"
    )
    assert len(result.records) == 5


def test_interleaved_failure_falls_back_to_one_configuration_at_a_time(fake_gpu, tmp_path):
    def eager_breaks_after_its_output_check(config, prepared):
        if config.label == "eager":
            module, calls = prepared.module, []

            def forward(x):
                calls.append(1)
                if len(calls) > 1:
                    raise RuntimeError("eager broke")
                return module(x)

            prepared.module = forward

    parts = preparing(fake_gpu, eager_breaks_after_its_output_check)
    result = check_model(TINY, settings(tmp_path), parts=parts)
    failed = [
        (r.subject, r.detail) for r in result.rows if r.check == "profile" and r.status == FAIL
    ]
    line = f"{TINY} failed while being timed: RuntimeError: eager broke"
    assert failed == [(f"{TINY} (interleaved)", line), (f"{TINY} eager", line)]
    assert len(result.records) == 5 and by_check(result.rows, "prepare")[1] == ("eager", PASS)


def test_a_model_that_cannot_be_built_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = check_model("py:missing.py:Net", CheckSettings.dry(out_dir=tmp_path))
    (row,) = result.rows
    assert row.status == FAIL and row.check == "model" and "missing.py" in row.detail
    assert result.records == []


def test_record_rows_flag_recompiles_and_unrecorded_cuda_graphs(fake_gpu, tmp_path):
    record = check_model(TINY, settings(tmp_path), parts=fake_gpu).records[0]
    record.timing.validity["recompiles"] = {
        "warmup_graphs": 0,
        "timing_graphs": 2,
        "cudagraph_skips": 0,
    }
    record.timing.preparation["cudagraphs"] = {
        "warmup_calls": 8,
        "recorded": False,
        "states": ["none"] * 8,
        "cudagraph_skips": 1,
    }
    record.timing.validity["gpu"]["samples"][1]["throttle_mask"] = 0x20
    rows = {r.check: r for r in record_rows(record)}
    assert rows["recompiles"].status == FAIL and rows["recompiles"].detail.startswith("2 graph(s)")
    assert rows["cudagraphs"].status == FAIL and "1 graph(s) skipped" in rows["cudagraphs"].detail
    assert rows["gpu state"].status == WARN
    assert "sw_thermal_slowdown in 1 of" in rows["gpu state"].detail


def test_past_the_deadline_no_further_configuration_is_prepared(fake_gpu, tmp_path):
    result = check_model(TINY, settings(tmp_path), parts=fake_gpu, deadline=time.monotonic() - 1)
    assert by_check(result.rows, "prepare") == [(label, SKIP) for label in ALL_SIX]
    assert {r.detail for r in result.rows} == {"budget spent"} and result.records == []


# --------------------------------------------------------------------------------- agreement


def test_interleave_rotates_the_order_and_agreement_is_a_ratio_of_medians():
    order = []

    def arm(name, ms, reference=None):
        return agree.Arm(name, lambda n: order.append(name) or [ms * 1e6] * n, reference)

    arms = [arm("rexbench", 10.0), arm("timer", 10.2, "rexbench"), arm("other", 9.0, "rexbench")]
    samples = agree.interleave(arms, rounds=3, per_round=4)
    rounds = [["rexbench", "timer", "other"], ["timer", "other", "rexbench"]]
    assert order == [*rounds[0], *rounds[1], "other", "rexbench", "timer"]
    assert {k: len(v) for k, v in samples.items()} == {"rexbench": 12, "timer": 12, "other": 12}
    timer, other = agree.agreements(arms, samples)
    assert timer.ratio == pytest.approx(10.0 / 10.2) and timer.agrees  # -2.0%
    assert other.ratio == pytest.approx(10.0 / 9.0) and not other.agrees  # +11%
    assert "within 3%: NO" in other.text()
    assert agree.agreements(arms[1:], {"timer": [1.0]}) == []  # no reference samples: nothing


def test_real_rexbench_and_timer_arms_on_the_cpu():
    model = torch.nn.Linear(8, 8)
    x = torch.randn(4, 8)
    from rexbench.measure.timing.devices import CpuOps

    arms = [agree.rexbench_arm(lambda: model(x), CpuOps()), agree.timer_arm(lambda: model(x), 1)]
    samples = agree.interleave(arms, rounds=1, per_round=3)
    assert len(samples["rexbench"]) == 3 and len(samples["torch.utils.benchmark.Timer"]) == 3
    assert all(v > 0 for v in samples["torch.utils.benchmark.Timer"])
    assert isinstance(agree.do_bench_arm(lambda: None, 1.0), str)  # no triton here: the reason
