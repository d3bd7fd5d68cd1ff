"""The deploy snippet: the runtime's own code for the winner, its threads and allocator, run in a
fresh process (real ONNX Runtime and OpenVINO), and what the check says when it cannot run."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from _tune_nets import WIDE, write_wide

import rexbench
from rexbench.measure.backends.base import Backend, Option
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.config import RunConfig
from rexbench.measure.machine.allocator import ENV_VARS as STEADY_ENV
from rexbench.tune.deploy import Deployment, environment, preparation, snippet
from rexbench.tune.space import Candidate
from rexbench.tune.verify import Verification, run_snippet, runs_for


def deployment(name: str, allocator: str = "steady", **fields) -> Deployment:
    config = RunConfig.preset(name, threads=1, **fields)
    return Deployment(WIDE, None, Candidate(config, allocator), (3, 16, 16))


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
    assert [runs_for(s) for s in (0.001, 0.05, 0.2, 5.0, 0.0)] == [200, 200, 50, 20, 200]
