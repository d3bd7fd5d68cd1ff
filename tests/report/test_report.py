"""`rexbench report`: paper vs measured rows, claim ratios, inconsistencies, hardware comparison,
mismatch refusal, self-contained HTML, Markdown and JSON output."""

from __future__ import annotations

import json
import re

import pytest
from _synthetic import env, make

from rexbench.cli import run
from rexbench.errors import RexbenchError
from rexbench.records.store import write_record
from rexbench.report import compare
from rexbench.report import paper as report
from rexbench.report.render import to_html, to_markdown

A, B = "xeon-8c-aaaa0001", "epyc-2c-bbbb0002"
# reference machine A and a machine B on which B0 overtakes x1.0 and x2.0 overtakes x1.5
ON_A = {
    "rexnet_x1.0": 40.0,
    "rexnet_x1.5": 50.0,
    "rexnet_x2.0": 60.0,
    "efficientnet_b0": 42.0,
    "efficientnet_b3": 90.0,
}
ON_B = {
    "rexnet_x1.0": 30.0,
    "rexnet_x1.5": 55.0,
    "rexnet_x2.0": 45.0,
    "efficientnet_b0": 20.0,
    "efficientnet_b3": 60.0,
}


def machine_a(**kw):
    return [make(s, ms, machine=A, **kw) for s, ms in ON_A.items()]


def machine_b(**kw):
    return [make(s, ms, machine=B, brand="AMD EPYC Test", **kw) for s, ms in ON_B.items()]


def rows_by_model(section, **match):
    return {r["model"]: r for r in section.data if all(r.get(k) == v for k, v in match.items())}


# ------------------------------------------------------------------------------ paper vs measured


def test_counts_exact_vs_paper_rounding_and_inconsistency() -> None:
    recs = machine_a() + [make("efficientnet_b1", 70.0, machine=A)]
    counts = rows_by_model(report.build(recs).section("counts"))
    x15 = counts["rexnet_x1.5"]
    assert x15["macs_conv"] == 875_828_154 and x15["params"] == 9_728_593
    flops = {p["printed"]: p for p in x15["paper_flops"]}
    assert flops["0.9B"]["rounds"] is True and flops["0.9B"]["tables"] == ["Table 5"]
    assert flops["0.86B"]["rounds"] is False and flops["0.86B"]["exact_as_printed"] == "0.88B"
    assert "rexnet_x1.5_flops" in x15["inconsistencies"]
    # B1 at 240 px: 686,802,832 MACs print as 0.69B, not the paper's 0.70B
    b1 = counts["efficientnet_b1"]
    assert b1["resolution"] == 240
    assert b1["paper_flops"] == [
        {"printed": "0.70B", "tables": ["Table 5"], "rounds": False, "exact_as_printed": "0.69B"}
    ]
    assert counts["rexnet_x1.0"]["paper_params"][0]["rounds"] is True  # 4,796,873 -> 4.8M


def test_latency_measured_vs_paper_with_hardware() -> None:
    section = report.build(machine_a()).section("latency")
    x10 = rows_by_model(section)["rexnet_x1.0"]
    assert x10["median_ms"] == 40.0 and x10["paper"] == "47ms" and x10["paper_table"] == "Table 5"
    assert x10["measured_over_paper"] == pytest.approx(40 / 47)
    assert "Intel Xeon CPU E5-2630, batch 1, FP32" in section.intro
    assert "Different hardware" in section.intro


def test_claim_ratio_from_known_medians() -> None:
    claims = {r["id"]: r for r in report.build(machine_a()).section("claims").data}
    c = claims["rexnet_x2.0_vs_b3_cpu"]
    assert c["measured"] == pytest.approx(90 / 60)  # B3 median / x2.0 median
    assert c["stated"] == 1.4 and c["paper_table_value"] == pytest.approx(100 / 69)
    assert c["ci_low"] <= 1.5 <= c["ci_high"] and c["holds"] is True  # within 10% of 1.4
    assert claims["rexnet_x1.0_vs_b0_cpu"]["measured"] == pytest.approx(42 / 40)
    # only claims with both records: no B1/B2 here, no GPU records
    assert "rexnet_x2.0_vs_b1_cpu" not in claims and "rexnet_x2.0_vs_b3_gpu" not in claims
    slow = [*machine_a()[:2], make("rexnet_x2.0", 80.0, machine=A), machine_a()[4]]
    slow_claim = {r["id"]: r for r in report.build(slow).section("claims").data}
    assert slow_claim["rexnet_x2.0_vs_b3_cpu"]["holds"] is False  # 90/80 = 1.125


def test_a_claim_whose_interval_holds_its_edge_is_a_tie_shown_with_enough_digits() -> None:
    # ReXNet x1.0 0.2% slower than B0: 0.998x, and the CI of the ratio reaches past 1
    tied = [make("rexnet_x1.0", 40.08, machine=A), make("efficientnet_b0", 40.0, machine=A)]
    section = report.build(tied).section("claims")
    (row,) = section.data
    assert row["ci_low"] < 1.0 <= row["ci_high"] and row["verdict"] == "tie (within CI)"
    (cells,) = section.rows
    assert cells[-2:] == ["tie (within CI)", "apart"]  # verdict; synthetic records: no shared run
    assert re.fullmatch(r"0\.99\d\dx \[0\.99\d\d, 1\.00\d\d\]", cells[3]), cells[3]
    clear = [make("rexnet_x1.0", 30.0, machine=A), make("efficientnet_b0", 40.0, machine=A)]
    (cells,) = report.build(clear).section("claims").rows
    assert cells[-2] == "yes" and re.fullmatch(r"1\.33x \[1\.\d\d, 1\.\d\d\]", cells[3])


def test_gpu_claims_need_cuda_records_with_the_same_settings() -> None:
    recs = [
        make("rexnet_x2.0", 40.0, machine=A, device="cuda"),
        make("efficientnet_b3", 78.0, machine=A, device="cuda"),
        make("efficientnet_b3", 100.0, machine=A, device="cuda", batch_size=32),
    ]
    rows = report.build(recs).section("claims").data
    assert [(r["id"], r["batch_size"]) for r in rows] == [("rexnet_x2.0_vs_b3_gpu", 64)]
    assert rows[0]["measured"] == pytest.approx(78 / 40)


# ----------------------------------------------------------------------------- hardware comparison


def test_hardware_comparison_ratios_and_ranking_change() -> None:
    doc = report.build(machine_a() + machine_b())
    assert doc.extra == {"machines": [A, B], "reference": A}
    hw = rows_by_model(doc.section("hardware"))
    assert hw["rexnet_x1.0"]["machines"][B]["speed_vs_reference"] == pytest.approx(40 / 30)
    assert hw["efficientnet_b0"]["machines"][A]["rank"] == 2
    assert hw["efficientnet_b0"]["machines"][B]["rank"] == 1
    speed = {r["machine"]: r for r in doc.section("speed").data}
    ratios = [ON_A[k] / ON_B[k] for k in ON_A]
    geo = 1.0
    for r in ratios:
        geo *= r
    assert speed[B]["geomean"] == pytest.approx(geo ** (1 / 5))
    assert speed[B]["min"] == pytest.approx(50 / 55) and speed[A]["geomean"] == 1.0
    changes = {(c["faster_on_reference"], c["faster_here"]) for c in doc.section("ranking").data}
    assert changes == {("rexnet_x1.0", "efficientnet_b0"), ("rexnet_x1.5", "rexnet_x2.0")}
    # the other machine as reference: speeds invert, the same pairs flip the other way
    doc_b = report.build(machine_a() + machine_b(), reference="epyc")
    assert doc_b.extra["reference"] == B
    hw_b = rows_by_model(doc_b.section("hardware"))
    assert hw_b["rexnet_x1.0"]["machines"][A]["speed_vs_reference"] == pytest.approx(30 / 40)


def test_fingerprints_side_by_side() -> None:
    newer = env(B, "AMD EPYC Test", torch="2.14.0")
    recs = machine_a() + [make("rexnet_x1.0", 30.0, environment=newer)]
    section = report.build(recs).section("machines")
    assert section.columns == ["", A, B]
    cpu = next(r for r in section.data if r["field"] == "CPU")
    assert cpu[A] == "Intel Xeon Test 1234" and cpu[B] == "AMD EPYC Test"
    assert any("torch: 2.13.0 vs 2.14.0" in n for n in section.notes)


def test_mismatch_refused_then_allowed() -> None:
    recs = machine_a() + machine_b(batch_size=2)
    with pytest.raises(RexbenchError) as err:
        report.build(recs)
    message = str(err.value)
    assert "batch_size 1 vs 2" in message and message.endswith("with --allow-mismatch")
    assert "\n" not in message and "and 2 more" in message  # 5 models, 3 named
    doc = report.build(recs, allow_mismatch=True)
    diffs = doc.section("settings").data
    assert len(diffs) == 5 and diffs[0]["differences"] == ["batch_size 1 vs 2"]
    assert any(c.endswith("*") or "* #" in c for c in doc.section("hardware").rows[0])


@pytest.mark.parametrize(
    "kw, text",
    [
        (dict(dtype="bf16"), "dtype fp32 vs bf16"),
        (dict(resolution=256), "resolution 224 vs 256"),
        (dict(preset="channels_last"), "config eager vs channels_last"),
    ],
)
def test_each_compared_setting_is_named(kw, text) -> None:
    recs = [make("rexnet_x1.0", 40.0, machine=A), make("rexnet_x1.0", 30.0, machine=B, **kw)]
    with pytest.raises(RexbenchError, match=re.escape(text)):
        report.build(recs)


def test_reference_errors() -> None:
    with pytest.raises(RexbenchError, match="matches no machine; choose one of"):
        compare.resolve_reference("arm", [A, B])
    with pytest.raises(RexbenchError, match="matches several machines"):
        compare.resolve_reference("-", [A, B])


# --------------------------------------------------------------------------------------- outputs


def test_html_is_self_contained_and_markdown_has_tables(tmp_path) -> None:
    recs = machine_a() + machine_b()
    doc = report.build(recs)
    paths = report.write(doc, tmp_path / "out", recs)
    text = paths["html"].read_text()
    assert paths["figure"].read_bytes()[:4] == b"\x89PNG"
    assert re.findall(r'src="([^"]{0,22})', text) == ["data:image/png;base64,"]
    assert "http" not in text and "<link" not in text and "<script" not in text
    assert "<table>" in text and "rexnet_x2.0" in text
    md = paths["markdown"].read_text()
    assert "![Figure 3: top-1 vs FLOPs, CPU and GPU latency](figure3.png)" in md
    assert (
        "| model | res | params |" in md and "## The paper's relative speed claims, measured" in md
    )
    svg = to_html(doc, b'<?xml version="1.0"?>\n<svg xmlns="x"><text>hi</text></svg>', "svg")
    assert "<svg" in svg and "<?xml" not in svg and "<img" not in svg


def test_markdown_escapes_pipes() -> None:
    doc = report.build(machine_a())
    doc.sections[0].rows[0][0] = "a|b"
    assert "a\\|b" in to_markdown(doc)


def test_cli_report_out_and_json(tmp_path, capsys) -> None:
    for r in machine_a():
        write_record(r, tmp_path / "a")
    for r in machine_b():
        write_record(r, tmp_path / "b")
    out = tmp_path / "report"
    argv = ["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out), "--json"]
    assert run([*argv, "--reference", str(tmp_path / "b")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["reference"] == B and data["machines"] == [A, B]
    assert {s["id"] for s in data["sections"]} >= {
        "hardware",
        "speed",
        "ranking",
        "machines",
        "counts",
        "latency",
        "claims",
    }
    assert sorted(p.name for p in out.iterdir()) == ["figure3.png", "report.html", "report.md"]
    assert run(["report", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert (
        "Latency: measured vs paper" in printed and "ReXNet (x2.0) is about 1.4x faster" in printed
    )


def test_cli_report_mismatch_exit_2(tmp_path, capsys) -> None:
    for r in machine_a():
        write_record(r, tmp_path / "a")
    for r in machine_b(preset="compile"):
        write_record(r, tmp_path / "b")
    assert run(["report", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config eager vs compile" in err and "--allow-mismatch" in err
    assert run(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--allow-mismatch"]) == 0
    assert "Settings that differ" in capsys.readouterr().out
    assert run(["report", str(tmp_path), "--reference", str(tmp_path)]) == 2
    assert "exactly one machine" in capsys.readouterr().err


def test_empty_and_duplicate_records(tmp_path, capsys) -> None:
    old = make("rexnet_x1.0", 99.0, machine=A, created="2025-01-01T00:00:00+00:00")
    doc = report.build([old, *machine_a()])
    assert doc.intro == [
        "1 older record(s) not shown, each replaced by a newer one of the same model, "
        "configuration, threads and allocator: rexnet_x1.0 eager, 8 threads of 2025-01-01 00:00 UTC.",
        f"Paper vs measured on `{A}`: Intel Xeon Test 1234 (8 cores), torch 2.13.0.",
    ]
    assert rows_by_model(doc.section("latency"))["rexnet_x1.0"]["median_ms"] == 40.0
    (tmp_path / "empty").mkdir()
    assert run(["report", str(tmp_path / "empty")]) == 2  # nothing to report is an error
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("rexbench: error: no rexbench records in ")
