"""benchmarks/gpu_check.py end to end: the dry run on this CPU (a tiny model, a few calls), the same
command on a fake GPU (tests/_profile_fakes.py, passed to `main` as the check's parts) with agreeing
and disagreeing timers, no CUDA, the time budget. torch.compile is stubbed: what a real compile does
is tested in tests/measure."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from _gate_data import record
from _gpu_fakes import fake_nvml
from _profile_fakes import FakeCudaOps, fake_cuda, write_tiny

from rexbench.gpucheck.check import CheckParts
from rexbench.measure.config import RunConfig
from rexbench.measure.timing import agreement as agree
from rexbench.records.schema import RunInfo

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"
TINY, TINY3 = "py:nets.py:Tiny", "py:nets.py:Tiny?num_classes=3"


@pytest.fixture(scope="module")
def command():
    spec = importlib.util.spec_from_file_location("gpu_check_command", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch, "compile", lambda module, **kw: module)
    return tmp_path


def rows_of(out: Path) -> list[dict]:
    return json.loads((out / "checks.json").read_text())["rows"]


@pytest.mark.slow
def test_dry_run_end_to_end_on_the_cpu(command, tiny, monkeypatch, capsys):
    monkeypatch.setattr("rexbench.measure.backends.inputs._cpu_supports", lambda dtype: False)
    for missing in ("fvcore", "thop", "iopath", "yacs"):  # the check needs none of them
        monkeypatch.setitem(sys.modules, missing, None)
    out = tiny / "check"
    models = ["--models", TINY, TINY3, "--headline", TINY]
    args = ["--dry-run", *models, "--resolution", "16", "--runs", "6", "--out", str(out)]
    assert command.main(args) == 0
    printed = capsys.readouterr().out
    assert "GPU check (dry run on the CPU): 5 record(s)" in printed
    table = printed.strip().splitlines()[:-1]  # the last line is a sentence, never hard-wrapped
    assert len(table) > 10 and max(len(line) for line in table) <= 80
    assert f"{TINY} compile_cl vs triton.testing.do_bench" in printed
    assert printed.strip().splitlines()[-1].startswith("gpu check passed: ")
    records = sorted((out / "records").rglob("*.json"))
    assert len(records) == 5  # Tiny: compile_cl, eager, max, cudagraphs; Tiny(3): compile_cl
    labels = sorted(json.loads(p.read_text())["run"]["label"] for p in records)
    assert labels == ["compile_cl", "compile_cl", "cudagraphs", "eager", "max"]
    data = json.loads((out / "checks.json").read_text())
    assert data["partial"] is False and data["counts"]["FAIL"] == 0
    assert data["settings"]["device"] == "cpu" and data["settings"]["batch_size"] == 2
    assert data["settings"]["out_dir"] == "records"  # relative: no machine path in the results
    status = {(r["check"], r["subject"]): r["status"] for r in data["rows"]}
    assert status[("prepare", f"{TINY} compile_cl+fp16")] == "SKIP"  # no fp16 on this CPU
    assert status[("parity", f"{TINY} cudagraphs")] == "PASS"
    assert status[("parity", f"{TINY3} compile_cl")] == "PASS"
    assert status[("timer agreement", f"{TINY} compile_cl vs triton.testing.do_bench")] == "SKIP"
    timer = status[("timer agreement", f"{TINY} compile_cl vs torch.utils.benchmark.Timer")]
    assert timer in ("PASS", "WARN")  # CPU timings on a shared machine are not judged
    assert status[("report", "Figure 3 + paper vs measured")] == "WARN"  # py: models: no top-1
    for name in ("report.md", "report.html"):
        assert (out / "report" / name).stat().st_size > 0
    assert not (out / "report" / "figure3.png").exists()  # no top-1 to plot: no empty figure
    summary = (out / "summary.txt").read_text()
    assert "GPU check (dry run on the CPU)" in summary and "timer agreement" in summary


def test_no_cuda_is_one_line_and_exit_2(command, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert command.main(["--out", str(tmp_path / "x")]) == 2
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and printed.startswith("gpu_check: CUDA is not available")
    assert not (tmp_path / "x").exists()


def fake_gpu(monkeypatch, timer_ms: float) -> CheckParts:
    """A fake GPU (tests/_profile_fakes.py) with a cool fake NVML, and timers reading `timer_ms`."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], [0x0]))

    def arms(item, ops, settings):
        return [
            agree.Arm("rexbench", lambda n: [2e6] * n),
            agree.Arm("torch.utils.benchmark.Timer", lambda n: [timer_ms * 1e6] * n, "rexbench"),
        ], []

    return CheckParts(fake_cuda(monkeypatch, FakeCudaOps()), arms)


@pytest.mark.parametrize("timer_ms, code", [(2.02, 0), (2.5, 1)])
def test_on_a_fake_gpu_a_disagreeing_timer_fails_the_check(
    command, tiny, monkeypatch, capsys, timer_ms, code
):
    parts = fake_gpu(monkeypatch, timer_ms)
    out = tiny / "check"
    args = ["--models", TINY, "--headline", TINY, "--runs", "4", "--warmup", "1", "--out", str(out)]
    assert command.main(args, parts=parts) == code
    printed = capsys.readouterr().out
    assert "GPU check (batch 64 on cuda): 6 record(s)" in printed
    rows = rows_of(out)
    failed = [r for r in rows if r["status"] == "FAIL"]
    assert [r["check"] for r in failed] == ([] if code == 0 else ["timer agreement"])
    gpu_rows = [r for r in rows if r["check"] == "gpu state"]
    assert len(gpu_rows) == 6 and all(r["status"] == "PASS" for r in gpu_rows)


def test_the_budget_skips_what_does_not_fit(command, tiny, capsys):
    out = tiny / "check"
    args = ["--dry-run", "--models", TINY, "--headline", TINY, "--budget-s", "0"]
    assert command.main([*args, "--out", str(out)]) == 0
    (row, report) = rows_of(out)
    assert row["status"] == "SKIP" and row["detail"].startswith("budget: 0 s used of 0 s")
    assert report["status"] == "SKIP" and report["detail"] == "no records"
    budget = command.Budget(100.0, clock=iter([0.0, 10.0, 95.0]).__next__)
    assert budget.fits(6)  # nothing measured yet: no estimate
    budget.spent(60.0, 6)  # 10 s per configuration
    assert not budget.fits(1)  # 95 s used + 10 s > 100 s


def test_report_rows_draw_the_gpu_panel(command, tmp_path):
    rows = []
    for spec, ms in (("rexnet_x1.0", 21.0), ("efficientnet_b0", 23.0)):
        rec = record(ms, spec=spec)
        rec.run = RunInfo.from_config(RunConfig.preset("compile_cl", device="cuda"))
        rows.append(rec)
    (row,) = command.report_rows(rows, tmp_path, dry_run=False)
    assert row.status == "PASS", row.detail
    assert row.detail.startswith("Top-1 vs GPU latency: 2 line(s)")
    assert (tmp_path / "report" / "report.md").exists()


def test_a_bad_model_name_is_one_line_and_exit_2(command, tiny, capsys):
    assert command.main(["--dry-run", "--models", "rexnet_x9.9", "--out", str(tiny / "c")]) == 2
    printed = capsys.readouterr().out
    assert printed.startswith("gpu_check: error: ") and printed.count("\n") == 1
