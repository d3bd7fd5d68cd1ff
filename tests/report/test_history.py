"""rexbench.report.history: records of many commits -> series ordered by commit date, with steps,
Markdown and a figure; and `rexbench history` on the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _gate_data import lognormal, record

from rexbench.cli import run
from rexbench.errors import RexbenchError
from rexbench.records.store import write_record
from rexbench.report import history as hist


def at_commit(i: int, median_ms: float, *, macs=398_370_392, spec="rexnet_x1.0"):
    rec = record(median_ms, seed=i, spec=spec)
    rec.timing.samples_ns = lognormal(median_ms, n=100, sigma=0.01, seed=i)
    rec.counts["macs_conv"] = macs
    rec.env["git"] = {
        "commit": f"{i:02d}" + "a" * 38,
        "dirty": False,
        "date": f"2026-01-{1 + i:02d}T12:00:00+00:00",
    }
    return rec


def series_records(levels):
    # stored newest first, to show that the commit date orders them, not the file order
    return [at_commit(i, ms) for i, ms in reversed(list(enumerate(levels)))]


def test_history_orders_by_commit_date_and_finds_the_step():
    records = series_records([30.0] * 8 + [34.0] * 8)
    (s,) = hist.build_history(records, "latency.p10")[0]
    assert [p.commit[:2] for p in s.points] == [f"{i:02d}" for i in range(16)]
    (step,) = s.steps
    assert step.index == 8 and s.points[8].commit.startswith("08")
    assert step.size == pytest.approx(34 / 30 - 1, abs=0.02)
    assert s.points[0].value == pytest.approx(np.percentile(records[-1].samples, 10) / 1e6)


def test_counts_history_and_rerun_of_a_commit_counts_once():
    records = [at_commit(i, 30.0, macs=100 if i < 4 else 120) for i in range(8)]
    rerun = at_commit(5, 30.0, macs=999)
    rerun.created = "2999-01-01T00:00:00+00:00"  # newer re-run of commit 05 wins
    (s,) = hist.build_history([*records, rerun], "macs_conv")[0]
    assert [p.value for p in s.points] == [100] * 4 + [120, 999, 120, 120]
    assert [st.index for st in s.steps] == [4, 5, 6]


def test_instruction_history_finds_a_one_percent_step_and_no_step_in_repeat_noise():
    rng = np.random.default_rng(0)
    jitter = 1 + rng.normal(0, 1e-4, 16)  # what repeated counts of one binary vary by
    levels = [189e6] * 8 + [189e6 * 1.01] * 8
    records = [at_commit(i, 30.0) for i in range(16)]
    for rec, level, j in zip(records, levels, jitter, strict=True):
        rec.counts["instructions"] = round(level * j)
    (s,) = hist.build_history(records, "instructions")[0]
    (step,) = s.steps
    assert step.index == 8 and step.size == pytest.approx(0.01, abs=0.001)
    for rec, j in zip(records, jitter, strict=True):
        rec.counts["instructions"] = round(189e6 * j)
    (flat,) = hist.build_history(records, "instructions")[0]
    assert flat.steps == []


def test_records_without_commit_are_skipped_with_a_note_and_models_filter():
    records = series_records([30.0] * 4)
    no_git = record(30.0)
    other = at_commit(1, 50.0, spec="rexnet_x1.3")
    series, notes = hist.build_history([*records, no_git, other], "latency.median", ["rexnet_x1.0"])
    assert [s.model for s in series] == ["rexnet_x1.0"] and "1 record(s)" in notes[0]


def test_unknown_metric_is_refused():
    with pytest.raises(RexbenchError, match="unknown metric 'latency.fastest'"):
        hist.check_metric("latency.fastest")
    assert hist.check_metric("LATENCY.P90") == "latency.p90"


def test_markdown_and_figures(tmp_path):
    series, notes = hist.build_history(series_records([30.0] * 8 + [34.0] * 8), "latency.p10")
    text = hist.markdown(series, notes)
    assert "**step at 08aaaaaa** (2026-01-09)" in text and "+13." in text
    assert sum(line.startswith(("| 0", "| 1")) for line in text.splitlines()) == 16  # per commit
    for name in ("h.png", "h.svg"):
        assert hist.plot(series, tmp_path / name).stat().st_size > 1000
    with pytest.raises(RexbenchError, match="use a file name ending in"):
        hist.plot(series, tmp_path / "h.txt")


def test_cli_history(tmp_path, capsys):
    for rec in series_records([30.0] * 6 + [36.0] * 6):
        write_record(rec, tmp_path / "results" / rec.env["git"]["commit"][:8])
    summary = tmp_path / "summary.md"
    code = run(
        [
            "history",
            "rexnet_x1.0",
            "--from",
            str(tmp_path / "results"),
            "--json",
            "--summary",
            str(summary),
            "--plot",
            str(tmp_path / "h.png"),
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    (s,) = data["series"]
    assert len(s["points"]) == 12 and [st["index"] for st in s["steps"]] == [6]
    assert s["steps"][0]["commit"].startswith("06")
    assert "step at 06aaaaaa" in summary.read_text() and (tmp_path / "h.png").exists()
    assert run(["history", "--from", str(tmp_path / "results")]) == 0
    assert "latency.p10: rexnet_x1.0" in capsys.readouterr().out


def test_cli_history_with_an_empty_summary_writes_none_and_says_so(tmp_path, capsys):
    for rec in series_records([30.0] * 3 + [36.0] * 3):
        write_record(rec, tmp_path / "results" / rec.env["git"]["commit"][:8])
    before = sorted(tmp_path.rglob("*"))
    assert run(["history", "--from", str(tmp_path / "results"), "--summary", "", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["notes"][-1].startswith("--summary is empty (a variable such as $GITHUB_STEP")
    assert sorted(tmp_path.rglob("*")) == before
