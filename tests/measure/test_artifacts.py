"""The cache of built graphs: ONNX Runtime's export and int8 quantization and OpenVINO's NNCF
quantization built once and reused by a later preparation of the same computation (the real
runtimes, a small model at 64 x 64), keyed by the model's bytes, and nothing half-written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rexbench import create_model
from rexbench.errors import RexbenchError
from rexbench.measure.backends import artifacts, onnxruntime, openvino
from rexbench.measure.backends.prepare import prepare
from rexbench.measure.checks import parity
from rexbench.measure.config import RunConfig

pytestmark = pytest.mark.usefixtures("one_thread")

RES = 64


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(artifacts.ARTIFACTS_ENV, str(tmp_path / "graphs"))
    return tmp_path / "graphs"


@pytest.fixture(scope="module")
def small() -> nn.Module:
    torch.manual_seed(0)
    model = create_model("mobilenet_v3_small")
    parity.nontrivial_weights(model)
    return model


def test_the_key_is_the_models_bytes_the_parts_and_the_versions() -> None:
    a, b = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3)
    b.load_state_dict(a.state_dict())
    key = artifacts.graph_key(a, ["ort", [1, 3, 8, 8]], ["torch"])
    assert len(key) == 32 and key == artifacts.graph_key(b, ["ort", [1, 3, 8, 8]], ["torch"])
    assert key != artifacts.graph_key(a, ["ort", [2, 3, 8, 8]], ["torch"])
    assert key != artifacts.graph_key(a, ["ort", [1, 3, 8, 8]], ["torch", "onnxruntime"])
    with torch.no_grad():
        b.weight[0, 0, 0, 0] += 1e-6  # one weight, one ulp or so
    assert key != artifacts.graph_key(b, ["ort", [1, 3, 8, 8]], ["torch"])
    assert key != artifacts.graph_key(b.to(torch.bfloat16), ["ort", [1, 3, 8, 8]], ["torch"])


def test_without_a_folder_nothing_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(artifacts.ARTIFACTS_ENV, raising=False)
    built: list[Path] = []
    assert artifacts.cached(nn.Linear(2, 2), ["x"], [], lambda f: built.append(f) or {}) is None
    assert built == []


def test_a_failed_build_leaves_nothing_and_a_built_one_is_reused(cache: Path) -> None:
    def broken(folder: Path) -> dict:
        (folder / "model.onnx").write_bytes(b"half a graph")
        raise RuntimeError("the quantizer crashed")

    with pytest.raises(RuntimeError, match="the quantizer crashed"):
        artifacts.cached(nn.Linear(2, 2), ["x"], [], broken)
    assert list(cache.iterdir()) == []
    linear = nn.Linear(2, 2)
    first = artifacts.cached(linear, ["x"], [], lambda f: {"built": 1})
    second = artifacts.cached(linear, ["x"], [], lambda f: {"built": 2})
    assert first is not None and second is not None
    assert (first.reused, second.reused, second.info) == (False, True, {"built": 1})
    assert artifacts.with_note(second, {"a": 1})["artifact"].startswith("reused from this run's")
    assert artifacts.with_note(first, {"a": 1}) == {"a": 1}


def test_a_folder_that_cannot_be_written_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(artifacts.ARTIFACTS_ENV, "/proc/rexbench-graphs")
    with pytest.raises(RexbenchError) as caught:
        artifacts.cached(nn.Linear(2, 2), ["x"], [], lambda f: {})
    assert str(caught.value) == (
        "REXBENCH_ARTIFACTS=/proc/rexbench-graphs: cannot write built graphs there "
        "(No such file or directory); point it at a writable folder or unset it"
    )


def test_kept_sets_a_folder_for_the_block_and_removes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(artifacts.ARTIFACTS_ENV, raising=False)
    with artifacts.kept() as outer:
        assert os.environ[artifacts.ARTIFACTS_ENV] == str(outer) and outer.is_dir()
        with artifacts.kept() as inner:
            assert inner == outer
        assert outer.is_dir()  # the inner block leaves the outer one's folder
    assert artifacts.ARTIFACTS_ENV not in os.environ and not outer.exists()


def _forbid(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{name} ran again: the cached graph was not reused")

    monkeypatch.setattr(module, name, forbidden)


def _prepared_twice(model, name, monkeypatch, module, step):
    config = RunConfig.preset(name, resolution=RES, threads=1)
    first = prepare(model, config)
    _forbid(monkeypatch, module, step)  # the second preparation must not build its graph again
    second = prepare(model, config)
    return first, second


@pytest.mark.slow
def test_ort_int8_quantizes_once_and_reuses_the_graph(small, cache, monkeypatch) -> None:
    first, second = _prepared_twice(small, "ort_int8", monkeypatch, onnxruntime, "quantize")
    assert "artifact" not in first.runtime
    assert second.runtime["artifact"].startswith("reused from this run's cache")
    # the build's own times travel with the graph; the session is the second's own
    assert second.runtime["calibration"] == first.runtime["calibration"]
    assert second.runtime["onnx_bytes"] == first.runtime["onnx_bytes"]
    assert np.array_equal(first.output(), second.output())
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 1


@pytest.mark.slow
def test_ort_fp32_and_int8_are_two_graphs(small, cache) -> None:
    prepare(small, RunConfig.preset("ort", resolution=RES, threads=1))
    prepare(small, RunConfig.preset("ort_int8", resolution=RES, threads=1))
    prepare(small, RunConfig.preset("ort", resolution=RES, threads=2))  # threads: the same graph
    assert len(list(cache.iterdir())) == 2


@pytest.mark.slow
def test_openvino_int8_quantizes_once_and_reuses_the_ir(small, cache, monkeypatch) -> None:
    first, second = _prepared_twice(small, "openvino_int8", monkeypatch, openvino, "quantize")
    assert second.runtime["artifact"].startswith("reused from this run's cache")
    assert second.runtime["calibration"] == first.runtime["calibration"]
    assert np.array_equal(first.output(), second.output())
    folder = next(cache.iterdir())
    assert sorted(p.name for p in folder.iterdir()) == ["info.json", "model.bin", "model.xml"]
    # bf16 is a precision hint of the same fp32 graph: no second entry
    prepare(small, RunConfig.preset("openvino", resolution=RES, threads=1))
    prepare(small, RunConfig.preset("openvino", resolution=RES, threads=1, dtype="bf16"))
    assert len(list(cache.iterdir())) == 2
