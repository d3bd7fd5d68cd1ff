"""`rexbench count`: real CLI invocations through `rexbench.cli.run`, exit codes, JSON == table data.

Small resolutions (64 px) keep every invocation fast; the numbers themselves are checked against the
reference table in test_counting.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from rexbench.cli import run
from rexbench.measure.counting.counts import CONVENTIONS, COUNTERS, count, count_modules

MODELS = ["mobilenet_v3_small", "rexnet_x0.9"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rexbench: error: ")
    assert "Traceback" not in out + err
    return lines[0]


@pytest.fixture(scope="module")
def json_counts() -> dict:
    """One `--json` run for two models, captured once for the module."""
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert run(["count", *MODELS, "--resolution", "64", "--json"]) == 0
    return json.loads(buffer.getvalue())


def test_json_is_the_library_result(json_counts: dict) -> None:
    assert json_counts["conventions"] == CONVENTIONS
    assert [c["model"] for c in json_counts["counts"]] == MODELS
    for entry, name in zip(json_counts["counts"], MODELS, strict=True):
        assert entry == count(name, resolution=64).to_dict()
        assert entry["input_shape"] == [1, 3, 64, 64]
        assert set(entry["conv_linear_macs"]) == set(entry["skipped"]) == set(COUNTERS)
        assert entry["counters_agree"] is True


def test_table_shows_the_json_data(json_counts: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["count", *MODELS, "-r", "64"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    flat = _flat(out)
    assert CONVENTIONS in flat  # the caption states the conventions
    for entry in json_counts["counts"]:
        assert entry["model"] in out
        assert "1x3x64x64" in out
        fields = ("params_total", "params_trainable", "macs_conv", "macs_fvcore", "macs_thop")
        for field in (*fields, "flops_torch"):
            assert f"{entry[field]:,}" in out, field  # thousands separators, never cut
        for value in entry["conv_linear_macs"].values():
            assert f"{value:,}" in out
        for ops in entry["skipped"].values():
            for op, n in ops.items():
                assert f"{op} x{n}" in out, op  # every skipped op, whole, with its count


def test_by_module_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["count", "rexnet_x0.9", "--by-module", "--depth", "1", "-r", "64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (entry,) = data["models"]
    name, shape, rows = count_modules("rexnet_x0.9", 64, depth=1)
    assert entry == {
        "model": name,
        "input_shape": list(shape),
        "depth": 1,
        "modules": [json.loads(json.dumps(row.to_dict())) for row in rows],
    }
    assert [m["name"] for m in entry["modules"]] == ["", "features", "output"]
    total = entry["modules"][0]
    assert total["macs_conv"] == sum(m["macs_conv"] for m in entry["modules"][1:])

    assert run(["count", "rexnet_x0.9", "--by-module", "--depth", "1", "-r", "64"]) == 0
    out = capsys.readouterr().out
    for module in entry["modules"]:
        assert f"{module['params']:,}" in out and f"{module['macs_conv']:,}" in out
        assert "x".join(map(str, module["output_shape"])) in out
    assert "(model)" in out and "features" in out and "ReXNet" in out


def test_default_resolution_comes_from_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["count", "efficientnet_b1", "--by-module", "--depth", "0", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["models"]
    assert entry["input_shape"] == [1, 3, 240, 240]
    assert entry["modules"][0]["macs_conv"] == 686_802_832  # reference count @240


@pytest.mark.parametrize("name", ["rexnet_x0", "rexnet_x-1", "rexnet_xabc", "efficientnet_b9"])
def test_bad_names_exit_2_with_one_line(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["count", name]) == 2
    assert name in _one_error_line(capsys)


def test_a_bad_name_among_good_ones_fails_before_any_counting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["count", "rexnet_x1.0", "efficientnet_b9", "--json"]) == 2
    _one_error_line(capsys)  # and nothing on stdout: checked inside (no partial JSON either)


@pytest.mark.parametrize("resolution", ["0", "-1", "31", "100000"])
def test_bad_resolutions_exit_2_with_one_line(
    resolution: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["count", "rexnet_x1.0", "--resolution", resolution]) == 2
    assert "resolution must be between 32" in _one_error_line(capsys)


def test_bad_depth_and_weights_usage_exit_2(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    assert run(["count", "rexnet_x1.0", "--by-module", "--depth", "-1"]) == 2
    assert "--depth" in _one_error_line(capsys)
    assert run(["count", "rexnet_x1.0", "rexnet_x0.9", "--weights", str(tmp_path / "w.pth")]) == 2
    assert "exactly one model" in _one_error_line(capsys)


def test_missing_and_corrupt_weights_exit_2(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    assert run(["count", "mobilenet_v3_small", "--weights", str(tmp_path / "none.pth")]) == 2
    _one_error_line(capsys)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    assert run(["count", "mobilenet_v3_small", "--weights", str(corrupt)]) == 2
    _one_error_line(capsys)


def test_weights_are_loaded_and_counted(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    import rexbench

    path = tmp_path / "own.pth"
    torch.save(rexbench.create_model("mobilenet_v3_small").state_dict(), path)
    argv = ["count", "mobilenet_v3_small", "--weights", str(path), "-r", "64", "--json"]
    assert run(argv) == 0
    (entry,) = json.loads(capsys.readouterr().out)["counts"]
    assert entry["params_total"] == 2_542_856


def test_importing_the_command_does_not_import_torch() -> None:
    code = "import sys, rexbench.cli.count, rexbench.measure.counting.counts; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
