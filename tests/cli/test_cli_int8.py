"""The int8 presets through the real command line: `profile --config eager,ort_int8` writes both
records (each configuration in its own worker process), and a preset this machine cannot run is one
`skipped:` line in profile, sweep and baseline save while the others are measured; asked for alone,
it is the command's one error line. A quantizer that is not installed stops the run, naming the
extra."""

from __future__ import annotations

import json
import platform
from dataclasses import replace

import pytest
from _profile_fakes import fake_parts, write_tiny

from rexbench.cli import run as run_cli
from rexbench.records.store import load_records

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = "py:nets.py:Tiny"
FAST = ["--runs", "2", "--warmup", "0", "--threads", "1"]
ARM = "--config pt2e_int8 quantizes for x86 CPUs (X86InductorQuantizer); this one is aarch64"


@pytest.mark.slow
def test_profile_eager_and_ort_int8_writes_both_records(tmp_path, capsys):
    argv = ["profile", "mobilenet_v3_small", "--resolution", "64", "--config", "eager,ort_int8"]
    code = run_cli([*argv, *FAST, "--out", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)["rows"]
    assert [(r["config"], r["valid"]) for r in rows] == [("eager", True), ("ort_int8", True)]
    assert rows[1]["parity"]["fidelity"]["inputs"] == 216
    records = {r.run.label: r for r in load_records(tmp_path)}
    assert set(records) == {"eager", "ort_int8"}
    int8 = records["ort_int8"]
    assert (
        int8.run.config["options"] == {"quantize": "int8"} and int8.run.config["runtime"] == "ort"
    )
    assert int8.timing.preparation["runtime"]["calibration"]["inputs"] == 216
    assert int8.parity["tolerance"]["dtype"] == "int8" and int8.parity["fidelity"]["rel_l2"] < 0.05
    assert "fidelity" not in records["eager"].parity


@pytest.fixture
def arm(tmp_path, monkeypatch):
    """cwd = tmp_path with nets.py; this process believes it runs on an ARM CPU."""
    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    return tmp_path


def run(argv: list[str]) -> int:
    return run_cli(argv, parts=fake_parts())  # in one process, so the ARM CPU holds throughout


def skipped_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(("skipped", "note: skipped"))]


def test_profile_skips_a_preset_this_cpu_cannot_run_and_measures_the_rest(arm, capsys):
    code = run(["profile", TINY, "--config", "eager,pt2e_int8", *FAST, "--out", "res", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert skipped_lines(captured.err) == [f"skipped: {TINY} pt2e_int8: {ARM}"]
    data = json.loads(captured.out)
    assert data["skipped"] == [f"{TINY} pt2e_int8: {ARM}"] and data["failed"] == []
    assert [r.run.label for r in load_records(arm / "res")] == ["eager"]


def test_sweep_and_baseline_save_skip_it_too(arm, capsys):
    sweep = ["sweep", TINY, "--config", "eager,pt2e_int8", *FAST, "--out", "res", "--in-process"]
    assert run(sweep) == 0
    assert skipped_lines(capsys.readouterr().err) == [f"skipped: pt2e_int8: {ARM}"]
    assert [r.run.label for r in load_records(arm / "res")] == ["eager"]
    save = ["baseline", "save", TINY, "--config", "eager,pt2e_int8", *FAST, "--in-process"]
    assert run([*save, "--dir", "base", "--json"]) == 0
    captured = capsys.readouterr()
    assert skipped_lines(captured.err) == [f"note: skipped: {TINY} pt2e_int8: {ARM}"]
    (path,) = json.loads(captured.out)["records"]
    assert [r.run.label for r in load_records(path)] == ["eager"]


def test_alone_it_is_the_one_error_line(arm, capsys):
    assert run(["profile", TINY, "--config", "pt2e_int8", *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rexbench: error: {ARM}"]


@pytest.mark.parametrize(
    "preset, title", [("openvino_int8", "NNCF"), ("pt2e_int8", "PyTorch PT2E")]
)
def test_a_quantizer_that_is_not_installed_stops_the_run_naming_the_extra(
    preset, title, tmp_path, monkeypatch, capsys
):
    from rexbench.measure.backends import openvino
    from rexbench.measure.backends.registry import BACKENDS

    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    missing = "rexbench_missing_quantizer"
    monkeypatch.setattr(openvino, "NNCF", replace(openvino.NNCF, module=missing))
    monkeypatch.setattr(BACKENDS.get("pt2e"), "module", missing)
    assert run(["profile", TINY, "--config", f"eager,{preset}", *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"rexbench: error: --config {preset} needs {title}, which is not installed: "
        "pip install 'rexbench[int8]'"
    ]
