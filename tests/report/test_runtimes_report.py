"""Runtimes in the report, the figure and the gate: the fastest runtime per model with speed-ups
over eager, the paper's claims per runtime (and whether their two models were timed together),
invalid configurations shown as such and left out everywhere else."""

from __future__ import annotations

import json

import pytest
from _synthetic import make

from rexbench.cli import run
from rexbench.records.store import write_record
from rexbench.report import paper as report
from rexbench.report.claims import claim_rows, claims_section
from rexbench.report.figure3 import figure3, summary
from rexbench.report.runtimes import runtime_section

INVALID = {
    "valid": False,
    "rel_l2": 0.3,
    "max_abs_diff": 0.1,
    "top1_agreement": 0.0,
    "tolerance": {"rel_l2": 1e-3, "dtype": "fp32", "source": "..."},
    "reason": "relative L2 error 0.3 > 0.001 (fp32 tolerance)",
}
VALID = {**INVALID, "valid": True, "rel_l2": 4e-7, "reason": None}


def rec(spec, ms, preset, run_id="run-1", parity=VALID):
    r = make(spec, ms, preset=preset)
    r.parity = dict(parity)
    r.timing.run_id = run_id
    return r


def table5(run_ids=("run-1", "run-1")):
    """x2.0 and B3 under eager, max, ort and openvino; B3's openvino is invalid."""
    out = []
    for spec, eager, run_id in (
        ("rexnet_x2.0", 73.6, run_ids[0]),
        ("efficientnet_b3", 100.0, run_ids[1]),
    ):
        for preset, speedup in (("eager", 1.0), ("max", 1.73), ("ort", 2.15), ("openvino", 2.44)):
            bad = spec == "efficientnet_b3" and preset == "openvino"
            out.append(rec(spec, eager / speedup, preset, run_id, INVALID if bad else VALID))
    return out


def test_fastest_runtime_per_model_with_speedups_over_eager():
    section = runtime_section(table5())
    rows = {r["model"]: r for r in section.data}
    x20 = rows["rexnet_x2.0"]
    assert x20["fastest"] == "openvino" and x20["measured_together"]
    configs = {c["config"]: c for c in x20["configs"]}
    assert [c["config"] for c in x20["configs"]] == ["openvino", "ort", "max", "eager"]
    assert configs["ort"]["speedup"] == pytest.approx(2.15, rel=1e-3)
    assert configs["ort"]["ci_low"] <= configs["ort"]["speedup"] <= configs["ort"]["ci_high"]
    assert "speedup" not in configs["eager"]
    b3 = rows["efficientnet_b3"]
    assert b3["fastest"] == "ort"  # openvino is faster but computes something else
    assert not {c["config"]: c for c in b3["configs"]}["openvino"]["valid"]
    cells = dict(zip(section.columns, section.rows[0], strict=True))
    assert (
        cells["fastest"].startswith("ort")
        and "openvino INVALID" in cells["speed-up over eager [95% CI], fastest first"]
    )


def test_claims_per_runtime_leave_invalid_out_and_say_when_timed_apart():
    rows = [r for r in claim_rows(table5()) if r["id"] == "rexnet_x2.0_vs_b3_cpu"]
    assert [r["config"] for r in rows] == ["eager", "max", "ort"]  # openvino: B3 invalid
    ort = rows[2]
    assert ort["measured"] == pytest.approx(100.0 / 73.6) and ort["measured_together"]
    apart = claims_section(table5(run_ids=("run-1", "run-2")))
    assert all(row["measured_together"] is False for row in apart.data)
    assert any("timed apart" in note for note in apart.notes)
    assert all(cells[-1] == "apart" for cells in apart.rows)


def test_latency_and_hardware_tables_mark_invalid_records():
    doc = report.build(table5())
    latency = doc.section("latency")
    b3 = [r for r in latency.data if r["model"] == "efficientnet_b3" and r["config"] == "openvino"]
    assert b3[0]["notes"][0].startswith("INVALID: output differs from eager fp32")
    assert doc.section("runtimes").title == "Fastest runtime per model"


def test_figure_leaves_invalid_records_out_and_draws_one_runtime_or_several():
    records = table5()
    fig = figure3(records, configs=["ort"])
    lines = summary(fig)["panels"][1]["lines"]
    assert lines == ["ReXNet", "EfficientNet"]
    overlay = summary(figure3(records, configs=["max", "ort", "openvino"]))["panels"][1]["lines"]
    assert sum("openvino" in line for line in overlay) == 1  # B3's openvino point is not drawn
    assert len(overlay) == 5
    caption = " ".join(figure3(records, configs=["ort", "openvino"])._supxlabel.get_text().split())
    assert "4 record(s) of other configurations not shown (--config)" in caption
    assert "1 record(s) of configurations whose output differs from eager fp32 not shown" in caption


def test_cli_plot_and_report_with_runtimes(tmp_path, capsys):
    for r in table5():
        write_record(r, tmp_path)
    figure = str(tmp_path / "f.png")
    code = run(["plot", str(tmp_path), "--config", "ort,openvino", "--out", figure, "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    # one machine, one dtype and batch: a line is named by what tells it apart, its configuration
    assert sorted(data["panels"][1]["lines"]) == [
        "EfficientNet - ort",
        "ReXNet - openvino",
        "ReXNet - ort",
    ]
    assert run(["plot", str(tmp_path), "--config", "tvm", "--out", str(tmp_path / "g.png")]) == 2
    assert "--config tvm: no such configuration" in capsys.readouterr().err
    assert run(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Fastest runtime per model" in out and "openvino INVALID" in out


def test_gate_does_not_judge_an_invalid_record():
    from rexbench.gate import checks as gate
    from rexbench.gate.evaluate import invalid_verdicts

    check = gate.parse_check("latency.p10:+10%")
    base, now = rec("rexnet_x1.0", 30.0, "ort"), rec("rexnet_x1.0", 90.0, "ort", parity=INVALID)
    (verdict,) = invalid_verdicts([check], now, base)
    assert verdict.outcome == gate.NOT_COMPARABLE
    assert verdict.reason.startswith("output differs from the eager fp32 model's, not judged")
    assert invalid_verdicts([check], base, base) == []
