"""ONNX Runtime and OpenVINO configurations with the real runtimes: export or conversion, sessions
with the run's threads and precision, output parity against eager fp32, timing by rexbench's own
loop (tiny run counts: nothing here asserts a speed), failures as one line."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from _profile_fakes import fake_parts

from rexbench.cli import run as cli
from rexbench.errors import RexbenchError
from rexbench.measure.backends import onnx_export
from rexbench.measure.backends.openvino import OpenVinoBackend
from rexbench.measure.backends.prepare import prepare
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.checks.parity import TOLERANCES
from rexbench.measure.config import RunConfig
from rexbench.measure.run.profile import profile_models
from rexbench.records.store import load_records

THREADS = 2
RES = 96  # small inputs keep the export, conversion and timing short; the graphs are the full ones


def configs(*names: str) -> list[RunConfig]:
    return [RunConfig.preset(n, threads=THREADS, resolution=RES) for n in names]


@pytest.mark.slow
def test_each_runtime_exports_checks_and_times_a_rexnet_an_efficientnet_and_a_mobilenet_v3(
    tmp_path,
):
    models = ["rexnet_x1.0", "efficientnet_b0", "mobilenet_v3_small"]
    records = profile_models(
        models,
        configs("eager", "ort", "openvino"),
        runs=3,
        warmup=1,
        parts=fake_parts(),
        out_dir=tmp_path,
    )
    assert [(r.model.spec, r.run.label) for r in records] == [
        (m, c) for m in models for c in ("eager", "ort", "openvino")
    ]
    for r in records:
        assert len(r.samples) == 3 and r.valid, (r.model.spec, r.run.label, r.parity)
        # a real comparison: the weights are not the trivial initial ones, the numbers are small
        # (fp32 rounding, a million times under the tolerance) but not zero for the runtimes
        assert r.parity["weights"].startswith("random (seed 0): BatchNorm statistics")
        assert r.parity["top1_agreement"] == 1.0 and r.parity["tolerance"]["rel_l2"] == 1e-3
        if r.run.label != "eager":
            assert 0 < r.parity["rel_l2"] < TOLERANCES["fp32"] / 100
    by = {(r.model.spec, r.run.label): r for r in records}
    ort, ov = by[("rexnet_x1.0", "ort")], by[("rexnet_x1.0", "openvino")]
    info = ort.timing.preparation["runtime"]
    assert info["name"] == "ONNX Runtime" and info["version"] == BACKENDS.get("ort").version()
    assert info["exporter"] == "legacy" and info["opset"] == onnx_export.ONNX_OPSET
    assert info["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert info["provider"] == "CPUExecutionProvider" and info["intra_op_threads"] == THREADS
    assert ort.timing.compile_s == pytest.approx(info["setup_s"] + info["first_call_s"])
    assert info["setup_s"] >= info["export_s"] + info["session_s"] > 0
    info = ov.timing.preparation["runtime"]
    assert info["name"] == "OpenVINO" and info["version"] == BACKENDS.get("openvino").version()
    assert info["hints"] == {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": THREADS,
        "INFERENCE_PRECISION_HINT": "f32",
    }
    assert info["compiled"]["INFERENCE_PRECISION_HINT"] == "f32"  # what the plugin really runs
    assert info["compiled"]["INFERENCE_NUM_THREADS"] == str(THREADS)
    assert ov.timing.compile_s > info["convert_s"] > 0
    # the configurations of one model are timed in the same rounds, the models one after another
    assert len({r.run_id for r in records if r.model.spec == "rexnet_x1.0"}) == 1
    assert len({r.run_id for r in records}) == 3
    # and the records read back with all of it
    back = {(r.model.spec, r.run.label): r for r in load_records(tmp_path)}
    assert back[("rexnet_x1.0", "ort")].parity == ort.parity
    assert back[("rexnet_x1.0", "openvino")].timing.preparation["runtime"] == info


def test_runner_output_is_the_models_and_threads_follow_the_run():
    from rexbench.models.factory import create_model
    from rexbench.spec import parse

    model = create_model(parse("mobilenet_v3_small"))
    for name in ("ort", "openvino"):
        prepared = prepare(model, RunConfig.preset(name, threads=1), input_shape=(3, 64, 64))
        out = prepared.run()
        assert out.shape == (1, 1000) and prepared.input.shape == (1, 3, 64, 64)
        read = prepared.output()  # the protocol's fp32 array, a copy the next call leaves alone
        assert read.dtype == np.float32 and read.shape == (1, 1000)
        assert np.array_equal(read, out) and read is not out
        info = prepared.runtime
        threads = info.get("intra_op_threads") or info["hints"]["INFERENCE_NUM_THREADS"]
        assert threads == torch.get_num_threads()  # the thread count in force, as for torch


UNEXPORTABLE = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Bessel(nn.Module):
        default_input_shape = (3, 16, 16)

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            return torch.special.bessel_j0(self.conv(x)).mean((2, 3))
    """
)


@pytest.fixture
def bessel(tmp_path, monkeypatch):
    (tmp_path / "odd.py").write_text(UNEXPORTABLE)
    monkeypatch.chdir(tmp_path)
    return "py:odd.py:Bessel"


def test_an_export_that_fails_is_one_line_and_the_other_configs_are_kept(bessel, tmp_path):
    failures = []
    records = profile_models(
        [bessel],
        configs("eager", "ort"),
        runs=2,
        warmup=0,
        parts=fake_parts(),
        out_dir=tmp_path / "results",
        on_failure=failures.append,
    )
    assert [r.run.label for r in records] == ["eager"] and records[0].valid
    (failure,) = failures
    assert failure.model == bessel and failure.config == "ort"
    assert "\n" not in failure.line
    assert failure.line.startswith(f"{bessel} could not be prepared as ort (ONNX Runtime ")
    assert "aten::special_bessel_j0" in failure.line  # the operator, named by the exporter
    # without a callback the failure is raised at the end, after the rest was measured and stored
    with pytest.raises(RexbenchError, match="could not be prepared as ort"):
        profile_models(
            [bessel],
            configs("eager", "ort"),
            runs=2,
            warmup=0,
            parts=fake_parts(),
            out_dir=tmp_path / "again",
        )
    assert [r.run.label for r in load_records(tmp_path / "again")] == ["eager"]


@pytest.mark.slow
def test_cli_prints_the_failure_and_exits_1(bessel, capsys):
    code = cli(
        [
            "profile",
            bessel,
            "--config",
            "eager,ort",
            "--runs",
            "2",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    lines = [line for line in captured.err.splitlines() if line.startswith("failed:")]
    assert len(lines) == 1 and "ONNX Runtime" in lines[0] and "bessel_j0" in lines[0]
    assert '"config": "eager"' in captured.out


def test_a_missing_runtime_is_one_line_naming_the_extra(bessel, monkeypatch, capsys):
    monkeypatch.setattr(BACKENDS.get("openvino"), "module", "rexbench_missing_runtime")
    code = cli(["profile", bessel, "--config", "eager,openvino", "--runs", "1"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1  # the error comes first, and alone
    assert err[0] == (
        "rexbench: error: --config openvino needs OpenVINO, which is not installed: "
        "pip install 'rexbench[openvino]'"
    )


def test_a_dtype_the_runtime_cannot_take_is_one_line(monkeypatch):
    from rexbench.measure.backends import inputs

    monkeypatch.setattr(inputs, "_cpu_supports", lambda dtype: True)  # the CPU is not the limit
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    with pytest.raises(RexbenchError) as info:
        prepare(module, RunConfig.preset("ort", dtype="bf16"), input_shape=(3, 8, 8))
    assert str(info.value) == "ONNX Runtime does not run bf16: use --dtype fp32 or fp16"


def test_runtime_configs_refuse_torch_preparations_and_openvino_on_cuda():
    with pytest.raises(RexbenchError, match="ort prepares the model itself: compile apply"):
        RunConfig(runtime="ort", channels_last=False)
    with pytest.raises(RexbenchError, match="OpenVINO's CPU device only"):
        RunConfig.preset("openvino", device="cuda")
    with pytest.raises(RexbenchError, match="unknown runtime 'tvm'"):
        RunConfig(runtime="tvm", compile=False, channels_last=False)


def test_openvino_refuses_a_precision_the_cpu_would_silently_replace():
    import openvino as ov

    if "FP16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU runs fp16 natively")
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()).eval()
    config = RunConfig.preset("openvino", dtype="fp16")
    with pytest.raises(RexbenchError, match=r"OpenVINO runs \w+ where --dtype fp16 asked for f16"):
        OpenVinoBackend().build(module, torch.randn(1, 3, 8, 8), config, 1)
