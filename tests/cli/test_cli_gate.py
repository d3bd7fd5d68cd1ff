"""`rexbench baseline save` and `rexbench gate`: real CLI invocations on synthetic records (nothing is
timed), real files written and read back, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _gate_data import lognormal, record

from rexbench.cli import run
from rexbench.errors import RexbenchError
from rexbench.gate.run import GateRequest, Quiet, run_gate
from rexbench.measure.machine.env import machine_id
from rexbench.records.store import read_counts, write_counts, write_record

MACHINE = "amd-epyc-2c-00000001"
COUNTS = {  # rexnet_x1.0 / mobilenet_v3_small at 224 (tests/data/reference_counts.json)
    "rexnet_x1.0": {
        "resolution": 224,
        "params_total": 4_796_873,
        "params_trainable": 4_796_873,
        "macs_conv": 398_370_392,
    },
    "mobilenet_v3_small": {
        "resolution": 224,
        "params_total": 2_542_856,
        "params_trainable": 2_542_856,
        "macs_conv": 56_510_400,
    },
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (the cwd) with baselines/: rexnet_x1.0 at 40 ms on MACHINE + counts.json."""
    monkeypatch.chdir(tmp_path)
    write_record(record(40.0, seed=1), tmp_path / "baselines")
    write_counts(tmp_path / "baselines", COUNTS)
    return tmp_path


def current(folder: Path, *records) -> str:
    for r in records:
        write_record(r, folder)
    return str(folder)


def gate(*args: str) -> int:
    return run(["gate", *args])


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("rexbench: error: ")
    return err


# -------------------------------------------------------------------------------- outcomes


def test_unchanged_passes(project, capsys):
    assert gate("--from", current(project / "now", record(40.0, seed=2))) == 0
    out = capsys.readouterr()
    assert "latency.p10:+10%" in out.out and "pass" in out.out
    assert "gate: PASS (4 pass)" in out.err


def test_regression_exits_1(project, capsys):
    assert gate("--from", current(project / "now", record(48.0, seed=2)), "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "FAIL" and data["exit_code"] == 1
    latency = data["verdicts"][-1]
    assert latency["outcome"] == "regression" and latency["normalisation"] == "anchor"
    assert latency["ratio"] == pytest.approx(1.2, abs=0.02) and latency["ci"][0] > 1


def test_inconclusive_warns_or_fails_on_request(project, capsys):
    noisy = record(41.0, seed=2)
    noisy.timing.samples_ns = lognormal(41.0, n=30, sigma=0.4, seed=2)  # too few for p10 (50)
    now = current(project / "now", noisy)
    assert gate("--from", now) == 0
    err = capsys.readouterr().err
    assert "inconclusive latency checks pass" in err and "PASS with warnings" in err
    assert gate("--from", now, "--fail-on-inconclusive") == 1


def test_anchor_cancels_machine_drift(project, capsys):
    """Model 30% slower in raw time only because the whole machine was (the anchor too): pass."""
    drifted = record(52.0, anchor_ms=2.6, seed=2)
    assert gate("--from", current(project / "now", drifted), "--json") == 0
    latency = json.loads(capsys.readouterr().out)["verdicts"][-1]
    assert latency["outcome"] == "pass" and latency["ratio"] == pytest.approx(1.0, abs=0.02)
    assert latency["current"] / latency["baseline"] == pytest.approx(1.3, abs=0.02)


def test_other_machine_is_not_comparable_unless_strict(project, capsys):
    elsewhere = record(80.0, seed=2, machine="intel-xeon-8c-00000002")
    now = current(project / "now", elsewhere)
    assert gate("--from", now, "--json") == 0
    latency = json.loads(capsys.readouterr().out)["verdicts"][-1]
    assert latency["outcome"] == "not comparable"
    assert "machine: amd-epyc-2c-00000001 vs intel-xeon-8c-00000002" in latency["reason"]
    assert gate("--from", now, "--strict") == 1
    assert "not comparable" in capsys.readouterr().out


def test_user_checks_and_pyproject(project, capsys):
    now = current(project / "now", record(48.0, seed=2))
    assert gate("--from", now, "--check", "latency.p10:+25%") == 0
    capsys.readouterr()
    (project / "pyproject.toml").write_text('[tool.rexbench.gate]\nchecks = ["latency.p10:+25%"]\n')
    assert gate("--from", now, "--json") == 0
    checks = [v["check"] for v in json.loads(capsys.readouterr().out)["verdicts"]]
    assert "latency.p10:+25%" in checks and "latency.p10:+10%" not in checks
    (project / "pyproject.toml").write_text(
        '[tool.rexbench.gate]\nstrict = true\nbaseline = "nowhere"\n'
    )
    assert gate("--from", now) == 2  # the configured folder has no baseline of rexnet_x1.0
    assert "no baseline for rexnet_x1.0 under" in error_line(capsys)


def test_summary_is_appended(project, capsys):
    summary = project / "summary.md"
    summary.write_text("# earlier step\n")
    now = current(project / "now", record(48.0, seed=2))
    gate("--from", now, "--summary", str(summary))
    gate("--from", now, "--summary", str(summary), "--check", "latency.p10:+25%")
    text = summary.read_text()
    assert text.startswith("# earlier step\n")
    assert text.count("### rexbench gate:") == 2
    assert "### rexbench gate: FAIL" in text and "### rexbench gate: PASS" in text
    assert "| rexnet_x1.0 | eager | latency.p10:+10% |" in text


def test_an_empty_summary_writes_none_and_says_so(project, capsys):
    """`--summary "$GITHUB_STEP_SUMMARY"` outside GitHub Actions: the variable is empty."""
    now = current(project / "now", record(40.0, seed=2))
    before = sorted(p.name for p in project.rglob("*"))
    assert gate("--from", now, "--summary", "") == 0
    err = capsys.readouterr().err
    assert "gate: PASS (4 pass)" in err
    assert "note: --summary is empty (a variable such as $GITHUB_STEP_SUMMARY" in err
    assert sorted(p.name for p in project.rglob("*")) == before


class Watch:
    """Gate hooks that count the measurements started (nothing is shown)."""

    def __init__(self) -> None:
        self.measured = 0
        self.quiet = Quiet()

    def note(self, text: str) -> None:
        pass

    def counting(self):
        return self.quiet.counting()

    def measuring(self, runners: int, runs: int, warmup: int):
        self.measured += 1
        return self.quiet.measuring(runners, runs, warmup)


@pytest.mark.parametrize(
    ("models", "checks", "words"),
    [
        (
            ("rexnet_x1.0",),
            ("instructions:+2%",),
            "--check instructions:+2%: the baselines of rexnet_x1.0 under baselines have no "
            "instruction count; save them with `rexbench baseline save rexnet_x1.0 --instructions`",
        ),
        (("rexnet_x1.0", "mobilenet_v2"), (), "no baseline for mobilenet_v2 under baselines"),
    ],
    ids=["instructions", "second-model"],
)
def test_what_would_fail_after_measuring_fails_before(project, models, checks, words):
    here = machine_id()  # a baseline of this machine: the gate would measure rexnet_x1.0 first
    write_record(record(40.0, seed=3, machine=here), project / "baselines")
    watch = Watch()
    request = GateRequest(models=models, checks=checks, baseline=Path("baselines"))
    with pytest.raises(RexbenchError) as caught:
        run_gate(request, watch)
    assert str(caught.value).startswith(words)
    assert watch.measured == 0


# ----------------------------------------------------------------------------- errors (exit 2)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--check", "latency.median:=", "rexnet_x1.0"], "latency takes +N%"),
        (["--check", "speed:+5%", "rexnet_x1.0"], "unknown metric 'speed'"),
        ([], "give MODEL..., --all, --from RECORDS"),
        (["--all", "rexnet_x1.0"], "not both"),
        (["rexnet_x9.9.9"], "rexnet_x9.9.9"),
    ],
)
def test_usage_errors_are_one_line(project, capsys, args, words):
    assert gate(*args) == 2
    assert words in error_line(capsys)


def test_corrupt_baseline_record(project, capsys):
    bad = project / "baselines" / MACHINE / "broken.json"
    bad.write_text("{ not json")
    assert gate("--from", current(project / "now", record(40.0, seed=2))) == 2
    line = error_line(capsys)
    assert "broken.json: not valid JSON" in line and "re-run the measurement" in line


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d.pop("schema_version"), "has no schema_version"),
        (lambda d: d.update(schema_version=99), "written by a newer rexbench (schema 99"),
        (lambda d: d["timing"].pop("samples_ns"), "missing field 'timing.samples_ns'"),
    ],
)
def test_old_schema_or_damaged_baseline(project, capsys, change, words):
    (path,) = (project / "baselines" / MACHINE).glob("*.json")
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    assert gate("--from", current(project / "now", record(40.0, seed=2))) == 2
    assert words in error_line(capsys)


def test_corrupt_counts_baseline(project, capsys):
    (project / "baselines" / "counts.json").write_text('{"schema_version": 1, "kind": "profile"}')
    assert gate("--counts-only", "rexnet_x1.0") == 2
    assert "not a rexbench counts baseline" in error_line(capsys)


def test_missing_counts_baseline(project, capsys):
    assert gate("--counts-only", "mobilenet_v2", "--baseline", str(project / "baselines")) == 2
    line = error_line(capsys)
    assert "no counts baseline for mobilenet_v2" in line
    assert "rexbench baseline save --counts-only mobilenet_v2" in line


# -------------------------------------------------------------------------------- counts gate


def test_counts_gate_passes_and_catches_an_edited_count(project, capsys):
    assert gate("--counts-only", "mobilenet_v3_small", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [v["check"] for v in data["verdicts"]] == [
        "params_total:=",
        "params_trainable:=",
        "macs_conv@224:=",
    ]
    edited = {**COUNTS["mobilenet_v3_small"], "macs_conv": 56_510_401}
    write_counts(project / "baselines", {"mobilenet_v3_small": edited})
    assert gate("--counts-only", "mobilenet_v3_small", "--json") == 1
    bad = [
        v for v in json.loads(capsys.readouterr().out)["verdicts"] if v["outcome"] == "regression"
    ]
    assert [(v["check"], v["baseline"], v["current"]) for v in bad] == [
        ("macs_conv@224:=", 56_510_401, 56_510_400)
    ]


# --------------------------------------------------------------------------------- baseline save


def test_baseline_save_from_records_and_counts_only(project, capsys):
    target = project / "refs"
    now = current(project / "now", record(41.0, seed=5))
    assert run(["baseline", "save", "--from", now, "--dir", str(target)]) == 0
    (saved,) = (target / MACHINE).glob("*.json")
    assert saved.name.startswith("rexnet_x1.0__eager__")
    assert read_counts(target) == {"rexnet_x1.0": COUNTS["rexnet_x1.0"]}
    assert (
        run(["baseline", "save", "--counts-only", "mobilenet_v3_small", "--dir", str(target)]) == 0
    )
    assert read_counts(target) == COUNTS  # merged, the first model kept
    capsys.readouterr()
    assert run(["baseline", "save", "--from", now, "mobilenet_v2", "--dir", str(target)]) == 2
    assert "no record of mobilenet_v2" in error_line(capsys)


TINY = """
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(2))


build.default_input_shape = (1, 8, 8)
"""


def test_py_model_source_change_reported_or_refused(project, capsys):
    nets = project / "nets"
    nets.mkdir()
    (nets / "tiny.py").write_text(TINY.replace("LazyLinear(2)", "Linear(144, 2)"))
    spec = "py:nets/tiny.py:build"
    assert run(["baseline", "save", "--counts-only", spec]) == 0
    entry = read_counts(project / "baselines")[spec]
    assert entry["params_total"] == 1 * 4 * 9 + 4 + 144 * 2 + 2
    assert entry["macs_conv"] == 6 * 6 * 4 * 9 + 144 * 2  # no 224 entry: the model cannot take it
    assert (
        entry["input_shape"] == "1x8x8"
        and "macs_conv@224" not in entry
        and len(entry["source_sha256"]) == 64
    )
    capsys.readouterr()
    (nets / "tiny.py").write_text(TINY.replace("LazyLinear(2)", "Linear(144, 2)") + "# edited\n")
    assert gate("--counts-only", spec) == 0
    assert "source changed since the baseline" in capsys.readouterr().err
    assert gate("--counts-only", spec, "--require-same-source") == 2
    assert "refusing to compare (--require-same-source)" in error_line(capsys)


def test_baseline_save_warns_about_a_busy_machine(project, capsys):
    busy = current(project / "busy", record(40.0, seed=5, load=5.9))
    assert run(["baseline", "save", "--from", busy, "--dir", str(project / "refs")]) == 0
    err = capsys.readouterr().err
    assert "measured on a busy machine (1-min load average 5.90 on 2 usable cores)" in err
