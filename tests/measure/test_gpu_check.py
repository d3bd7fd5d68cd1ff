"""The GPU check's measuring half (measure.gpu_check, measure.agreement, measure.gpu_parity) on a fake
GPU: configurations, per-configuration failures, the interleaved-then-alone fallback, parity limits,
timer agreement logic with scripted timers. torch.compile is stubbed (no real compile here)."""

from __future__ import annotations

import sys

import pytest
import torch
from _gpu_fakes import fake_nvml
from _profile_fakes import FakeCudaOps, fake_cuda, write_tiny

from rexbench.gpucheck import check as gpu_check
from rexbench.gpucheck.check import FAIL, PASS, SKIP, CheckSettings, check_model, configs_for
from rexbench.gpucheck.parity import PARITY_TOLERANCE, output_parity
from rexbench.measure.timing import agreement as agree

TINY = "py:nets.py:Tiny"


@pytest.fixture
def fake_gpu(tmp_path, monkeypatch):
    """A fake GPU (tests/_profile_fakes.py) with a cool fake NVML, the Tiny model, no real compile,
    fp16/bf16 allowed on this CPU (the fake prepares on it) and timers that agree."""
    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    ops = FakeCudaOps()
    fake_cuda(monkeypatch, ops)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], [0x0]))
    monkeypatch.setattr(torch, "compile", lambda module, **kw: module)
    monkeypatch.setattr("rexbench.measure.backends.inputs._cpu_supports", lambda dtype: True)
    monkeypatch.setattr(gpu_check, "default_arms", scripted_arms(2.00, 2.01))
    return ops


def scripted_arms(rexbench_ms: float, timer_ms: float):
    def arms(item, ops, settings):
        return [
            agree.Arm("rexbench", lambda n: [rexbench_ms * 1e6] * n),
            agree.Arm("torch.utils.benchmark.Timer", lambda n: [timer_ms * 1e6] * n, "rexbench"),
        ], [gpu_check.CheckRow("timer agreement", "vs triton", SKIP, "triton not usable")]

    return arms


def settings(tmp_path, **kw) -> CheckSettings:
    fields = dict(runs=4, warmup=1, round_size=2, agreement_rounds=2, agreement_per_round=3,
                  out_dir=tmp_path / "records", headline=TINY)  # fmt: skip
    return CheckSettings(**{**fields, **kw})


def by_check(rows, check):
    return [(r.subject.split(" ", 1)[1], r.status) for r in rows if r.check == check]


def test_configurations_of_the_headline_and_the_others():
    labels = [c.label for c in configs_for("rexnet_x2.0", CheckSettings())]
    assert labels == [
        "compile_cl",
        "eager",
        "max",
        "compile_cl+fp16",
        "compile_cl+bf16",
        "cudagraphs",
    ]
    assert [c.label for c in configs_for("efficientnet_b3", CheckSettings())] == ["compile_cl"]
    config = configs_for("rexnet_x2.0", CheckSettings())[0]
    assert (config.device, config.batch_size, config.runs, config.warmup) == ("cuda", 64, 200, 20)
    assert config.cudnn_benchmark and not config.allow_tf32
    dry = configs_for("rexnet_x2.0", CheckSettings.dry())[0]
    assert (dry.device, dry.batch_size, dry.resolution) == ("cpu", 2, 32)


def test_a_model_on_the_fake_gpu_gives_records_and_passing_rows(fake_gpu, tmp_path):
    result = check_model(TINY, settings(tmp_path))
    assert len(result.records) == 6 and all(r.device_kind == "cuda" for r in result.records)
    assert len(list((tmp_path / "records").rglob("*.json"))) == 6
    all_six = ["compile_cl", "eager", "max", "compile_cl+fp16", "compile_cl+bf16", "cudagraphs"]
    for check in ("prepare", "profile", "parity", "gpu state"):
        assert by_check(result.rows, check) == [(label, PASS) for label in all_six], check
    compiled = [label for label in all_six if label != "eager"]
    assert by_check(result.rows, "recompiles") == [(label, PASS) for label in compiled]
    agreement = [r for r in result.rows if r.check == "timer agreement"]
    assert [r.status for r in agreement] == [SKIP, PASS]
    assert "ratio 0.9950 (-0.50%; within 3%: yes; n=6)" in agreement[1].detail
    parity = [r.detail for r in result.rows if r.check == "parity"]
    assert parity[0].endswith("(limit 0.001, fp32)") and parity[4].endswith("(limit 0.16, bf16)")
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


def test_disagreeing_timers_fail_on_a_gpu_and_warn_in_a_dry_run(fake_gpu, tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "default_arms", scripted_arms(2.0, 2.2))
    rows = check_model(TINY, settings(tmp_path)).rows
    (bad,) = [r for r in rows if r.check == "timer agreement" and r.status != SKIP]
    assert bad.status == FAIL and "within 3%: NO" in bad.detail
    rows = check_model(TINY, settings(tmp_path, dry_run=True)).rows
    (warned,) = [r for r in rows if r.check == "timer agreement" and r.status != SKIP]
    assert warned.status == "WARN" and "not judged" in warned.detail


def test_one_failing_configuration_is_one_line_and_the_rest_go_on(fake_gpu, tmp_path, monkeypatch):
    def broken_fold(model):
        raise RuntimeError("fold exploded\nsecond line")

    monkeypatch.setattr("rexbench.measure.backends.torch.fold_batchnorm", broken_fold)
    result = check_model(TINY, settings(tmp_path))
    assert ("max", FAIL) in by_check(result.rows, "prepare")
    (row,) = [r for r in result.rows if r.status == FAIL]
    assert row.detail == "RuntimeError: fold exploded"
    assert len(result.records) == 5


def test_interleaved_failure_falls_back_to_one_configuration_at_a_time(
    fake_gpu, tmp_path, monkeypatch
):
    real = gpu_check.measure_prepared

    def flaky(spec, items, base_env, options):
        if len(items) > 1:
            raise RuntimeError("CUDA error: an illegal memory access")
        if items[0].config.label == "eager":
            raise RuntimeError("eager broke")
        return real(spec, items, base_env, options)

    monkeypatch.setattr(gpu_check, "measure_prepared", flaky)
    result = check_model(TINY, settings(tmp_path))
    failed = [
        (r.subject, r.detail) for r in result.rows if r.check == "profile" and r.status == FAIL
    ]
    assert failed == [
        (f"{TINY} (interleaved)", "RuntimeError: CUDA error: an illegal memory access"),
        (f"{TINY} eager", "RuntimeError: eager broke"),
    ]
    assert len(result.records) == 5


def test_a_model_that_cannot_be_built_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = check_model("py:missing.py:Net", CheckSettings.dry(out_dir=tmp_path))
    (row,) = result.rows
    assert row.status == FAIL and row.check == "model" and "missing.py" in row.detail
    assert result.records == []


def test_record_rows_flag_recompiles_and_unrecorded_cuda_graphs(fake_gpu, tmp_path):
    record = check_model(TINY, settings(tmp_path)).records[0]
    record.timing.validity["recompiles"] = {
        "warmup_graphs": 0,
        "timing_graphs": 2,
        "cudagraph_skips": 0,
    }
    record.timing.preparation["cudagraphs"] = {"warmup_calls": 8, "recorded": False,
                                                "states": ["none"] * 8, "cudagraph_skips": 1}  # fmt: skip
    record.timing.validity["gpu"]["samples"][1]["throttle_mask"] = 0x20
    rows = {r.check: r for r in gpu_check.record_rows(record)}
    assert rows["recompiles"].status == FAIL and rows["recompiles"].detail.startswith("2 graph(s)")
    assert rows["cudagraphs"].status == FAIL and "1 graph(s) skipped" in rows["cudagraphs"].detail
    assert (
        rows["gpu state"].status == "WARN"
        and "sw_thermal_slowdown in 1 of" in rows["gpu state"].detail
    )


# ------------------------------------------------------------------------------------ parity


def test_parity_limits_per_dtype():
    torch.manual_seed(0)
    ref = torch.randn(64, 1000)
    same = output_parity(ref, ref.clone(), "fp32")
    assert same["ok"] and same["rel_rmse"] == 0 and same["top1_agreement"] == 1.0
    assert output_parity(ref, ref * (1 + 1e-4), "fp32")["ok"]
    assert not output_parity(ref, ref * 1.01, "fp32")["ok"]
    assert (
        output_parity(ref, ref * 1.005, "fp16")["ok"]
        and not output_parity(ref, ref * 1.02, "fp16")["ok"]
    )
    assert output_parity(ref, (ref * 1.05).bfloat16(), "bf16")["ok"]
    assert not output_parity(ref, torch.randn(64, 1000), "bf16")["ok"]  # garbage: rel. RMSE ~1.4
    nan = ref.clone()
    nan[0, 0] = float("nan")
    assert output_parity(ref, nan, "bf16") | {"rel_rmse": 0} == {
        "ok": False, "rel_rmse": 0, "tolerance": 0.16, "top1_agreement": pytest.approx(1.0, abs=0.02),
        "finite": False}  # fmt: skip
    assert output_parity(ref, ref[:, :10], "fp32") == {
        "ok": False,
        "why": "shape (64, 10) vs (64, 1000)",
    }
    assert PARITY_TOLERANCE == {"fp32": 1e-3, "fp16": 1e-2, "bf16": 1.6e-1}


# --------------------------------------------------------------------------------- agreement


def test_interleave_rotates_the_order_and_agreement_is_a_ratio_of_medians():
    order = []

    def arm(name, ms, reference=None):
        return agree.Arm(name, lambda n: order.append(name) or [ms * 1e6] * n, reference)

    arms = [arm("rexbench", 10.0), arm("timer", 10.2, "rexbench"), arm("other", 9.0, "rexbench")]
    samples = agree.interleave(arms, rounds=3, per_round=4)
    assert order == ["rexbench", "timer", "other", "timer", "other", "rexbench",
                     "other", "rexbench", "timer"]  # fmt: skip
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


def test_past_the_deadline_no_further_configuration_is_prepared(fake_gpu, tmp_path):
    import time

    result = check_model(TINY, settings(tmp_path), deadline=time.monotonic() - 1)
    assert by_check(result.rows, "prepare") == [
        (label, SKIP)
        for label in (
            "compile_cl",
            "eager",
            "max",
            "compile_cl+fp16",
            "compile_cl+bf16",
            "cudagraphs",
        )  # fmt: skip
    ]
    assert {r.detail for r in result.rows} == {"budget spent"} and result.records == []
