"""rexbench.gate.checks (checks, the latency rule), gate_eval (record pairs), gate_config, gate_report and the
counts of rexbench.gate.baseline; synthetic samples only, nothing is timed."""

from __future__ import annotations

import pytest
from _gate_data import record, samples  # noqa: E402

from rexbench.errors import RexbenchError
from rexbench.gate import checks as gate
from rexbench.gate.baseline import count_entry, flat_counts, shape_key
from rexbench.gate.config import find_pyproject, load_config
from rexbench.gate.evaluate import GateOptions, count_verdicts, evaluate_model, source_change
from rexbench.gate.report import GateReport, markdown

# ------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    "text, metric, kind, tolerance, limit",
    [
        ("params:=", "params_total", "count", None, None),
        ("params_trainable:=", "params_trainable", "count", None, None),
        ("macs_conv:=", "macs_conv", "count", None, None),
        ("macs_conv:+5%", "macs_conv", "count", 0.05, 1.05),
        ("latency.median:+10%", "latency.median", "latency", 0.10, 1.10),
        ("latency.p90:+20%", "latency.p90", "latency", 0.20, 1.20),
        (" Latency : +7.5% ", "latency.median", "latency", 0.075, 1.075),
        ("throughput:-10%", "throughput", "throughput", 0.10, 1 / 0.9),
    ],
)
def test_parse_valid_checks(text, metric, kind, tolerance, limit):
    check = gate.parse_check(text)
    assert (check.metric, check.kind) == (metric, kind)
    assert check.tolerance == pytest.approx(tolerance) if tolerance else check.tolerance is None
    assert check.limit == pytest.approx(limit) if limit else check.limit is None


@pytest.mark.parametrize(
    "text, words",
    [
        ("params", "expected METRIC:="),
        ("params:~", "bad tolerance"),
        ("params:-1%", "counts take = or +N%"),
        ("latency.median:=", "latency takes +N%"),
        ("latency.median:-5%", "latency takes +N%"),
        ("latency.median:+0%", "latency takes +N%"),
        ("latency.p100:+5%", "unknown statistic"),
        ("latency.fastest:+5%", "unknown statistic"),
        ("throughput:+10%", "throughput takes -N%"),
        ("throughput:-100%", "throughput takes -N%"),
        ("flops:=", "unknown metric 'flops'"),
        (":=", "expected METRIC"),
    ],
)
def test_parse_invalid_checks_one_line(text, words):
    with pytest.raises(RexbenchError) as info:
        gate.parse_check(text)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_merge_checks_later_replaces_same_metric():
    merged = gate.merge_checks(gate.DEFAULT_CHECKS, ["latency.p10:+5%", "latency.p90:+20%"])
    texts = [c.text for c in merged]
    assert "latency.p10:+10%" not in texts
    assert texts[-2:] == ["latency.p10:+5%", "latency.p90:+20%"]
    assert texts[:3] == ["params_total:=", "params_trainable:=", "macs_conv:="]


# ------------------------------------------------------------------------------------- counts


def test_counts_compare_exactly():
    exact = gate.parse_check("params:=")
    same = gate.compare_count(exact, 4_796_873, 4_796_873, model="m", config="counts")
    assert same.outcome == gate.PASS and same.reason == "unchanged"
    one_more = gate.compare_count(exact, 4_796_873, 4_796_874, model="m", config="counts")
    assert one_more.outcome == gate.REGRESSION and "+1" in one_more.reason
    fewer = gate.compare_count(exact, 4_796_873, 4_796_000, model="m", config="counts")
    assert fewer.outcome == gate.REGRESSION  # exact means any change
    grow = gate.parse_check("macs_conv:+5%")
    assert gate.compare_count(grow, 100, 105, model="m", config="counts").outcome == gate.PASS
    assert gate.compare_count(grow, 100, 106, model="m", config="counts").outcome == gate.REGRESSION
    missing = gate.compare_count(exact, None, 5, model="m", config="counts")
    assert missing.outcome == gate.NOT_COMPARABLE and "baseline" in missing.reason


def test_flat_counts_reads_counts_json_and_record_forms():
    entry = {
        "resolution": 300,
        "params_total": 12,
        "params_trainable": 11,
        "macs_conv": 1827,
        "macs_conv@224": 962,
    }
    assert flat_counts(entry) == {
        "params_total": 12,
        "params_trainable": 11,
        "macs_conv@300": 1827,
        "macs_conv@224": 962,
    }
    rec = {
        "input_shape": [1, 3, 224, 224],
        "params": 5,
        "params_trainable": 5,
        "macs_conv": 7,
        "conventions": "text",
    }
    assert flat_counts(rec) == {"params_total": 5, "params_trainable": 5, "macs_conv@224": 7}
    assert shape_key((1, 1, 28, 28)) == "1x28x28" and shape_key((3, 256, 192)) == "3x256x192"


def test_mac_checks_at_every_common_input_and_mismatch():
    checks = gate.merge_checks(["macs_conv:="])
    base = {"resolution": 300, "params_total": 1, "macs_conv": 1827, "macs_conv@224": 962}
    now = {"resolution": 300, "params_total": 1, "macs_conv": 1827, "macs_conv@224": 963}
    verdicts = count_verdicts(checks, "efficientnet_b3", base, now)
    assert [(v.check, v.outcome) for v in verdicts] == [
        ("macs_conv@224:=", gate.REGRESSION),
        ("macs_conv@300:=", gate.PASS),
    ]
    other = count_verdicts(
        checks, "m", {"resolution": 300, "macs_conv": 1}, {"resolution": 224, "macs_conv": 1}
    )
    assert other[0].outcome == gate.NOT_COMPARABLE
    assert other[0].reason == "baseline has macs_conv at 300, current at 224"


def test_meta_device_counts_equal_a_real_forward():
    from rexbench.measure.counting.counts import count
    from rexbench.spec import parse

    entry = count_entry(parse("mobilenet_v3_small"))
    real = count("mobilenet_v3_small", counters=("conv",))
    assert entry == {
        "resolution": 224,
        "params_total": real.params_total,
        "params_trainable": real.params_trainable,
        "macs_conv": real.macs_conv,
    }
    assert entry["params_total"] == 2_542_856 and entry["macs_conv"] == 56_510_400


# ------------------------------------------------------------------------------------ latency

MEDIAN = gate.parse_check("latency.median:+10%")


def test_unchanged_model_passes():
    v = gate.compare_latency(
        MEDIAN, samples(40.0, seed=1), samples(40.0, seed=2), model="m", config="c"
    )
    assert v.outcome == gate.PASS, v.reason
    assert v.normalisation == "anchor"
    assert 0.98 < v.ratio < 1.02 and v.ci[1] <= 1.10
    assert "CI high" in v.reason


def test_twenty_percent_slower_is_a_regression():
    v = gate.compare_latency(
        MEDIAN, samples(40.0, seed=1), samples(48.0, seed=2), model="m", config="c"
    )
    assert v.outcome == gate.REGRESSION, v.reason
    assert v.ratio == pytest.approx(1.2, abs=0.02)
    assert v.p_value < gate.ALPHA and v.ci[0] > 1.0
    assert "significant" in v.reason and "+10.0%" in v.reason


def test_over_threshold_but_too_noisy_is_inconclusive():
    base = samples(40.0, seed=1, n=30, sigma=0.6)
    cur = samples(46.0, seed=2, n=30, sigma=0.6)
    v = gate.compare_latency(MEDIAN, base, cur, model="m", config="c")
    assert v.ratio > 1.10
    assert v.outcome == gate.INCONCLUSIVE and "not significant" in v.reason


def test_within_threshold_but_cannot_rule_out_more_is_inconclusive():
    base = samples(40.0, seed=1, n=40, sigma=0.3)
    cur = samples(42.0, seed=2, n=40, sigma=0.3)
    v = gate.compare_latency(MEDIAN, base, cur, model="m", config="c")
    assert v.ratio <= 1.10 < v.ci[1]
    assert v.outcome == gate.INCONCLUSIVE and "cannot rule out" in v.reason


def test_too_few_samples_is_inconclusive():
    v = gate.compare_latency(
        MEDIAN, samples(40.0, n=10), samples(60.0, n=10), model="m", config="c"
    )
    assert v.outcome == gate.INCONCLUSIVE and "too few samples (10" in v.reason
    p90 = gate.parse_check("latency.p90:+20%")
    v = gate.compare_latency(p90, samples(40.0, n=40), samples(40.0, n=40), model="m", config="c")
    assert "p90 needs at least 50" in v.reason  # 5 samples above p90


def test_anchor_cancels_a_uniformly_slower_machine():
    """Raw model times 30% apart only because the machine was 30% slower (anchor too): pass."""
    base = samples(40.0, anchor_ms=2.0, seed=1)
    slow_machine = samples(52.0, anchor_ms=2.6, seed=2)
    v = gate.compare_latency(MEDIAN, base, slow_machine, model="m", config="c")
    assert v.outcome == gate.PASS, v.reason
    assert v.ratio == pytest.approx(1.0, abs=0.02) and v.normalisation == "anchor"
    assert v.baseline == pytest.approx(40e6, rel=0.01) and v.current == pytest.approx(
        52e6, rel=0.01
    )
    assert v.details["anchor_ns"][1] == pytest.approx(2.6e6, rel=0.01)
    raw = gate.compare_latency(
        MEDIAN,
        gate.Samples(base.model_ns),
        gate.Samples(slow_machine.model_ns),
        model="m",
        config="c",
    )
    assert raw.normalisation == "raw" and raw.outcome == gate.REGRESSION


def test_anchor_exposes_a_slower_model_on_a_faster_machine():
    base = samples(40.0, anchor_ms=2.0, seed=1)
    cur = samples(40.0, anchor_ms=1.6, seed=2)  # same raw time, but the machine got 20% faster
    v = gate.compare_latency(MEDIAN, base, cur, model="m", config="c")
    assert v.ratio == pytest.approx(1.25, abs=0.03) and v.outcome == gate.REGRESSION


def test_throughput_check_is_judged_on_the_median():
    check = gate.parse_check("throughput:-10%")
    v = gate.compare_latency(
        check, samples(40.0, seed=1), samples(48.0, seed=2), model="m", config="c"
    )
    assert v.outcome == gate.REGRESSION
    assert v.baseline == pytest.approx(25.0, rel=0.01) and v.current == pytest.approx(
        20.8, rel=0.01
    )
    assert "throughput drop -16." in v.reason


def test_latency_outcome_rule_table():
    rule = gate.latency_outcome
    assert rule(1.2, 1.1, 1.3, 0.001, 1.1, 0.01) == gate.REGRESSION
    assert rule(1.2, 0.99, 1.3, 0.001, 1.1, 0.01) == gate.INCONCLUSIVE  # CI low not above 1
    assert rule(1.2, 1.1, 1.3, 0.02, 1.1, 0.01) == gate.INCONCLUSIVE  # p not below alpha
    assert rule(1.05, 1.0, 1.09, 0.5, 1.1, 0.01) == gate.PASS
    assert rule(1.05, 1.0, 1.12, 0.5, 1.1, 0.01) == gate.INCONCLUSIVE


def test_bootstrap_is_seeded():
    a, b = samples(40.0, seed=1), samples(41.0, seed=2)
    assert gate.ratio_interval(a, b, "median") == gate.ratio_interval(a, b, "median")


# --------------------------------------------------------------------------------- record pairs

OPTIONS = GateOptions(tuple(gate.merge_checks(gate.DEFAULT_CHECKS)))


def test_evaluate_model_pairs_counts_and_latency():
    verdicts, notes = evaluate_model(
        "rexnet_x1.0", OPTIONS, current=[record(40.0, seed=2)], baselines=[record(40.0, seed=1)]
    )
    assert [v.outcome for v in verdicts] == [gate.PASS] * 4
    assert [v.check for v in verdicts][-1] == "latency.p10:+10%" and notes == []


def test_other_machine_is_not_comparable_but_counts_are_checked():
    base = record(40.0, machine="intel-xeon-8c-00000002", torch="2.12.0")
    cur = record(
        80.0,
        counts={
            "input_shape": [1, 3, 224, 224],
            "params": 4_796_874,
            "params_trainable": 4_796_873,
            "macs_conv": 398_370_392,
        },
    )
    verdicts, _ = evaluate_model("rexnet_x1.0", OPTIONS, current=[cur], baselines=[base])
    by_check = {v.check: v for v in verdicts}
    assert by_check["params_total:="].outcome == gate.REGRESSION
    latency = by_check["latency.p10:+10%"]
    assert latency.outcome == gate.NOT_COMPARABLE and latency.ratio is None
    assert "machine: intel-xeon-8c-00000002 vs amd-epyc-2c-00000001" in latency.reason
    assert "torch: 2.12.0 vs 2.13.0" in latency.reason
    assert GateReport(verdicts).exit_code == 1  # the count regression fails anyway


def test_missing_or_different_anchor_falls_back_to_raw_with_a_note():
    verdicts, notes = evaluate_model(
        "rexnet_x1.0",
        OPTIONS,
        current=[record(40.0, anchor_version=2)],
        baselines=[record(40.0, seed=1)],
    )
    assert verdicts[-1].normalisation == "raw"
    assert "different drift anchors (version 1 vs 2)" in notes[0] and "not cancelled" in notes[0]
    _, notes = evaluate_model(
        "rexnet_x1.0",
        OPTIONS,
        current=[record(40.0, anchor_ms=None)],
        baselines=[record(40.0, seed=1)],
    )
    assert "no drift-anchor samples in the current run" in notes[0]


def test_py_source_change_is_reported_or_refused():
    spec = "py:nets/tiny.py:build"
    base = record(40.0, spec=spec, provenance={"sha256": "a" * 64})
    cur = record(40.0, spec=spec, seed=3, provenance={"sha256": "b" * 64})
    _, notes = evaluate_model(spec, OPTIONS, current=[cur], baselines=[base])
    assert notes == [
        f"{spec}: source changed since the baseline (sha256 aaaaaaaaaaaa -> "
        "bbbbbbbbbbbb); compared anyway"
    ]
    strict = GateOptions(OPTIONS.checks, require_same_source=True)
    with pytest.raises(RexbenchError, match="refusing to compare"):
        evaluate_model(spec, strict, current=[cur], baselines=[base])
    assert source_change(spec, "a" * 64, "a" * 64, True) is None


def test_busy_machine_downgrades_regression_and_pass():
    """Load only slows a run: no regression measured on a busy machine, no pass against a
    baseline measured on one (1-min load > 2 x 2 usable cores)."""
    verdicts, _ = evaluate_model(
        "rexnet_x1.0",
        OPTIONS,
        current=[record(48.0, seed=2, load=5.9)],
        baselines=[record(40.0, seed=1)],
    )
    latency = verdicts[-1]
    assert latency.outcome == gate.INCONCLUSIVE and latency.ratio > 1.1
    assert "busy during this run (1-min load average 5.90 on 2 usable cores)" in latency.reason
    assert latency.details["load"] == [1.9, 5.9]
    verdicts, _ = evaluate_model(
        "rexnet_x1.0",
        OPTIONS,
        current=[record(40.0, seed=2)],
        baselines=[record(40.0, seed=1, load=4.2)],
    )
    assert verdicts[-1].outcome == gate.INCONCLUSIVE and "save it again" in verdicts[-1].reason
    verdicts, _ = evaluate_model(
        "rexnet_x1.0",
        OPTIONS,
        current=[record(48.0, seed=2, load=3.9)],  # one extra busy thread: still judged
        baselines=[record(40.0, seed=1)],
    )
    assert verdicts[-1].outcome == gate.REGRESSION
    ignore = GateOptions(OPTIONS.checks, max_load_per_core=float("inf"))
    verdicts, _ = evaluate_model(
        "rexnet_x1.0",
        ignore,
        current=[record(48.0, seed=2, load=5.9)],
        baselines=[record(40.0, seed=1)],
    )
    assert verdicts[-1].outcome == gate.REGRESSION


# ----------------------------------------------------------------------------------- report


def test_report_exit_codes():
    def v(outcome: str) -> gate.Verdict:
        return gate.Verdict("m", "c", "latency.median:+10%", outcome, "why")

    assert GateReport([v(gate.PASS), v(gate.INCONCLUSIVE)]).exit_code == 0
    assert GateReport([v(gate.INCONCLUSIVE)], fail_on_inconclusive=True).exit_code == 1
    assert GateReport([v(gate.NOT_COMPARABLE)]).exit_code == 0
    assert GateReport([v(gate.NOT_COMPARABLE)], strict=True).exit_code == 1
    assert GateReport([v(gate.REGRESSION)]).status == "FAIL"
    assert GateReport([v(gate.PASS), v(gate.INCONCLUSIVE)]).headline() == (
        "gate: PASS with warnings (1 pass, 1 inconclusive)"
    )


def test_markdown_summary_table():
    verdicts, notes = evaluate_model(
        "rexnet_x1.0", OPTIONS, current=[record(48.0, seed=2)], baselines=[record(40.0, seed=1)]
    )
    text = markdown(GateReport(verdicts, ["a | note"]))
    assert text.startswith("### rexbench gate: FAIL\n")
    assert "| model | config | check | baseline | current |" in text
    assert (
        "| rexnet_x1.0 | counts | params_total:= | 4,796,873 | 4,796,873 | 1.000 | = (exact) |"
        in text
    )
    assert "❌ regression" in text and "(anchor)" in text and " ms | " in text
    assert "- a \\| note" in text


# ----------------------------------------------------------------------------------- config


def test_pyproject_config(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.rexbench.gate]\nmodels = ["rexnet_x1.0"]\n'
        'baseline = "refs"\nchecks = ["latency.p90:+20%"]\nfail_on_inconclusive = true\n'
        "alpha = 0.05\nruns = 200\nmax-load-per-core = inf\n"
    )
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    assert find_pyproject(deep) == tmp_path / "pyproject.toml"
    cfg = load_config(start=deep)
    assert cfg.models == ("rexnet_x1.0",) and cfg.baseline == tmp_path / "refs"
    assert cfg.checks == ("latency.p90:+20%",) and cfg.fail_on_inconclusive and not cfg.strict
    assert cfg.alpha == 0.05 and cfg.runs == 200 and cfg.warmup is None
    assert cfg.max_load_per_core == float("inf")


@pytest.mark.parametrize(
    "body, words",
    [
        ("colour = 1", "unknown key 'colour'"),
        ('checks = ["latency.median:=" ]', "latency takes +N%"),
        ("strict = 1", "strict must be bool"),
        ("alpha = 0.7", "alpha must be between 0 and 0.5"),
        ("models = [1]", "list of strings"),
    ],
)
def test_bad_pyproject_config_is_one_line(tmp_path, body, words):
    (tmp_path / "pyproject.toml").write_text(f"[tool.rexbench.gate]\n{body}\n")
    with pytest.raises(RexbenchError) as info:
        load_config(start=tmp_path)
    assert words in str(info.value) and "[tool.rexbench.gate]" in str(info.value)


def test_pyproject_without_table_gives_defaults(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config(start=tmp_path).checks == ()
    (tmp_path / "pyproject.toml").write_text("[tool.rexbench.gate\n")
    with pytest.raises(RexbenchError, match="not valid TOML"):
        load_config(start=tmp_path)
