"""Instruction counts for real: valgrind's callgrind through `baseline save --instructions` and
`gate --check instructions:+2%` on a small `py:` model (three counts under valgrind, about a minute).
Skipped where valgrind is not installed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rexbench.cli import run
from rexbench.measure.config import RunConfig
from rexbench.measure.counting.instructions import check_available, why_not

NET = '''
import os
from torch import nn

def build():
    """Same parameters and MACs either way; SMALLNET_EXTRA adds parameter-free activations."""
    act = nn.SiLU if os.environ.get("SMALLNET_EXTRA") else nn.Identity
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), act(), nn.Conv2d(8, 8, 3, padding=1),
                         act(), nn.Conv2d(8, 8, 3, padding=1), act())
'''
needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None,
    reason="valgrind is not installed",
)


def test_only_eager_cpu_pytorch_configurations_are_counted():
    assert why_not(RunConfig.preset("eager")) is None
    assert why_not(RunConfig.preset("channels_last")) is None
    assert "torch.compile" in why_not(RunConfig.preset("compile"))
    assert "PyTorch configurations" in why_not(RunConfig.preset("ort"))
    assert "CPU only" in why_not(RunConfig.preset("eager", device="cuda"))


def test_missing_valgrind_is_one_line_before_anything_is_measured(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no valgrind on it
    with pytest.raises(Exception, match="install valgrind"):
        check_available()
    code = run(
        [
            "profile",
            "rexnet_x0.9",
            "--config",
            "eager",
            "--instructions",
            "--runs",
            "20",
            "--out",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.splitlines() == [err]
    assert err.startswith("rexbench: error: counting instructions needs valgrind")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
@needs_valgrind
def test_baseline_and_gate_count_instructions_and_catch_extra_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("smallnet.py").write_text(NET)
    spec = "py:smallnet.py:build"
    common = [
        "--config",
        "eager",
        "--threads",
        "1",
        "--runs",
        "20",
        "--warmup",
        "2",
        "--resolution",
        "32",
    ]
    assert run(["baseline", "save", spec, *common, "--instructions", "--json"]) == 0
    saved = json.loads(capsys.readouterr().out)
    (path,) = saved["records"]
    counts = json.loads(Path(path).read_text())["counts"]
    method = counts["instructions_method"]
    assert counts["instructions"] > 100_000 and method["tool"] == "callgrind"
    assert "--instr-atstart=no" in method["valgrind_options"]  # instrumented after the warm-up
    assert len(method["per_call"]) == 2 and method["spread"] < 1e-2  # repeats agree

    def instructions_verdict() -> dict:
        run(["gate", spec, "--check", "instructions:+2%", "--json"])
        data = json.loads(capsys.readouterr().out)
        (verdict,) = [v for v in data["verdicts"] if v["check"] == "instructions:+2%"]
        return verdict

    same = instructions_verdict()
    assert same["outcome"] == "pass" and abs(same["ratio"] - 1) < 0.01  # 0.25% seen here
    monkeypatch.setenv("SMALLNET_EXTRA", "1")
    more = instructions_verdict()
    assert more["outcome"] == "regression" and more["ratio"] > 1.02
    assert more["baseline"] == counts["instructions"]
