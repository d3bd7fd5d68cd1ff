"""The `instructions:+N%` gate check on records that carry instruction counts (no valgrind here:
the counts are synthetic; tests/measure/test_instructions.py counts for real)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _gate_data import record

from rexbench.cli import run
from rexbench.errors import RexbenchError
from rexbench.gate import checks as gate
from rexbench.gate.instructions import instruction_verdicts
from rexbench.records.store import write_record

BASE = 189_000_000  # instructions per call of a ReXNet-1.0-sized net at 224, one thread
METHOD = {"tool": "callgrind", "valgrind": "valgrind-3.19.0", "spread": 2e-5}


def counted(instructions: int | None, *, torch: str = "2.13.0", valgrind="valgrind-3.19.0", **kw):
    r = record(torch=torch, **kw)
    if instructions is not None:
        r.counts = {
            **r.counts,
            "instructions": instructions,
            "instructions_method": {**METHOD, "valgrind": valgrind},
        }
    return r


def test_parse_takes_growth_only():
    check = gate.parse_check("instructions:+2%")
    assert (check.kind, check.tolerance, check.limit) == ("instructions", 0.02, 1.02)
    for bad in ("instructions:=", "instructions:-2%", "instructions:+0%"):
        with pytest.raises(RexbenchError, match="instructions take \\+N%"):
            gate.parse_check(bad)


def test_growth_over_the_limit_is_a_regression_and_under_it_a_pass():
    check = gate.parse_check("instructions:+2%")
    where = {"model": "m", "config": "eager"}
    base = counted(BASE).counts
    up = gate.compare_instructions(check, base, counted(int(BASE * 1.021)).counts, **where)
    assert up.outcome == gate.REGRESSION and up.ratio == pytest.approx(1.021, abs=1e-6)
    assert "+2.100%" in up.reason
    same = gate.compare_instructions(check, base, counted(BASE + 3_000).counts, **where)
    assert same.outcome == gate.PASS and same.ratio == pytest.approx(1.0000159, abs=1e-6)
    less = gate.compare_instructions(check, base, counted(int(BASE * 0.7)).counts, **where)
    assert less.outcome == gate.PASS


def test_missing_count_or_other_code_is_not_comparable():
    check = gate.parse_check("instructions:+2%")
    where = {"model": "m", "config": "eager"}
    none = gate.compare_instructions(check, counted(None).counts, counted(BASE).counts, **where)
    assert none.outcome == gate.NOT_COMPARABLE
    assert "no instruction count in the baseline" in none.reason and "--instructions" in none.reason
    skipped = {"instructions_skipped": "torch.compile under valgrind would take hours"}
    why = gate.compare_instructions(check, counted(BASE).counts, skipped, **where)
    assert why.outcome == gate.NOT_COMPARABLE and "would take hours" in why.reason
    other = gate.compare_instructions(
        check,
        counted(BASE).counts,
        counted(BASE).counts,
        ["software.torch 2.13.0 vs 2.14.1"],
        **where,
    )
    assert other.outcome == gate.NOT_COMPARABLE and "2.14.1" in other.reason


def test_a_baseline_counted_by_the_same_code_is_preferred_whatever_the_machine():
    check = gate.parse_check("instructions:+2%")
    now = counted(int(BASE * 1.05), machine="intel-xeon-2c-00000002")
    baselines = [counted(BASE, torch="2.12.0"), counted(BASE, machine="amd-epyc-2c-00000009")]
    (verdict,) = instruction_verdicts(
        [check], "rexnet_x1.0", baselines, {now.run.config_id: (now.counts, now.env)}
    )
    assert verdict.outcome == gate.REGRESSION and verdict.baseline == BASE
    (older,) = instruction_verdicts(
        [check], "rexnet_x1.0", baselines[:1], {now.run.config_id: (now.counts, now.env)}
    )
    assert (
        older.outcome == gate.NOT_COMPARABLE and "software.torch 2.12.0 vs 2.13.0" in older.reason
    )


@pytest.mark.parametrize(("factor", "code", "outcome"), [(1.0, 0, "pass"), (1.03, 1, "regression")])
def test_gate_cli_judges_given_records(tmp_path: Path, monkeypatch, capsys, factor, code, outcome):
    monkeypatch.chdir(tmp_path)
    write_record(counted(BASE, seed=1), tmp_path / "baselines")
    write_record(counted(int(BASE * factor), seed=2), tmp_path / "now")
    argv = ["gate", "--from", "now", "--check", "instructions:+2%", "--json"]
    assert run(argv) == code
    data = json.loads(capsys.readouterr().out)
    (verdict,) = [v for v in data["verdicts"] if v["check"] == "instructions:+2%"]
    assert verdict["outcome"] == outcome and verdict["baseline"] == BASE
