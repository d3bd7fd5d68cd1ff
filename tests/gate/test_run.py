"""The gate and baseline-save runs as library calls: a request in, a report (or the files written)
out, progress through hooks. No command line involved."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from _gate_data import record
from _profile_fakes import write_tiny

from rexbench.errors import RexbenchError
from rexbench.gate.config import GateConfig
from rexbench.gate.run import GateRequest, Quiet, measure_like, run_gate, select_specs
from rexbench.gate.save import SaveRequest, save_baselines
from rexbench.records.store import read_counts, write_counts, write_record
from rexbench.registry import MODELS

REXNET = {
    "resolution": 224,
    "params_total": 4_796_873,
    "params_trainable": 4_796_873,
    "macs_conv": 398_370_392,
}


class Recorder:
    """Hooks that remember what they were told."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.counted: list[str] = []
        self.spans: list[tuple[int, int, int]] = []
        self.events: list[object] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    @contextlib.contextmanager
    def counting(self):
        yield self.counted.append

    @contextlib.contextmanager
    def measuring(self, runners: int, runs: int, warmup: int):
        self.spans.append((runners, runs, warmup))
        yield self.events.append


@pytest.fixture
def baselines(tmp_path: Path) -> Path:
    """baselines/: rexnet_x1.0 at 40 ms + its counts.json entry."""
    root = tmp_path / "baselines"
    write_record(record(40.0, seed=1), root)
    write_counts(root, {"rexnet_x1.0": REXNET})
    return root


def test_select_specs_takes_models_or_all_not_both():
    assert [str(s) for s in select_specs(["rexnet_x1.0", "rexnet_x1.0"], False)] == ["rexnet_x1.0"]
    assert len(select_specs(None, True)) == len(MODELS.names())
    with pytest.raises(RexbenchError, match="not both"):
        select_specs(["rexnet_x1.0"], True)


def test_given_records_are_judged_without_measuring(baselines, tmp_path):
    now = tmp_path / "now"
    write_record(record(48.0, seed=2), now)
    hooks = Recorder()
    request = GateRequest(from_records=(now,), baseline=baselines)
    report = run_gate(request, hooks, config=GateConfig())
    assert report.exit_code == 1 and report.verdicts[-1].outcome == "regression"
    assert hooks.spans == [] and hooks.notes == [] and hooks.counted == []
    relaxed = GateRequest(from_records=(now,), baseline=baselines, checks=("latency.p10:+25%",))
    assert run_gate(relaxed, config=GateConfig()).exit_code == 0


def test_the_request_wins_over_the_file_and_the_file_over_the_defaults(baselines):
    config = GateConfig(models=("rexnet_x1.0",), baseline=baselines, strict=True)
    hooks = Recorder()
    report = run_gate(GateRequest(counts_only=True), hooks, config=config)
    assert hooks.counted == ["rexnet_x1.0"]  # the file's models, its baseline folder
    assert report.strict and report.exit_code == 0
    assert {v.outcome for v in report.verdicts} == {"pass"}
    with pytest.raises(RexbenchError, match="no counts baseline for rexnet_x0.9"):
        run_gate(GateRequest(models=("rexnet_x0.9",), counts_only=True), config=config)


def test_nothing_to_gate_says_what_to_give(baselines):
    with pytest.raises(RexbenchError, match="give MODEL..., --all, --from RECORDS"):
        run_gate(GateRequest(baseline=baselines), Quiet(), config=GateConfig())


def test_measure_like_takes_the_baselines_configuration(tmp_path, monkeypatch):
    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    spec = "py:nets.py:Tiny"
    base = record(spec=spec, counts={})  # eager, 300 runs, warmup 5
    hooks = Recorder()
    (now,) = measure_like(spec, [base], runs=3, hooks=hooks)
    assert now.run.config_id == base.run.config_id and len(now.timing.samples_ns) == 3
    assert hooks.spans == [(2, 3, 5)] and hooks.events  # one configuration + the anchor


def test_save_takes_records_and_merges_their_counts(tmp_path):
    given = tmp_path / "given"
    write_record(record(40.0, seed=1, load=9.0), given)  # 9 > 2 x 2 usable cores: busy
    hooks = Recorder()
    saved = save_baselines(SaveRequest(from_records=(given,), directory=tmp_path / "b"), hooks)
    assert hooks.counted == ["rexnet_x1.0"] and hooks.spans == []
    assert [p.parent.parent for p in saved.records] == [tmp_path / "b"]
    assert read_counts(tmp_path / "b")["rexnet_x1.0"] == saved.counts["rexnet_x1.0"]
    assert saved.counts["rexnet_x1.0"]["macs_conv"] == REXNET["macs_conv"]
    assert any("measured on a busy machine" in w for w in saved.warnings)
    assert set(saved.to_dict()) == {"counts_file", "counts", "records", "warnings", "invalid"}


def test_an_invalid_record_is_never_saved_as_a_baseline(tmp_path):
    given = tmp_path / "given"
    bad = record(40.0, seed=1)
    bad.parity = {"valid": False, "rel_l2": 0.3, "tolerance": {"rel_l2": 1e-3}}
    write_record(bad, given)
    saved = save_baselines(SaveRequest(from_records=(given,), directory=tmp_path / "b"))
    assert saved.records == [] and saved.invalid == 1
    assert any("not saved: INVALID (rel L2 0.3 > 0.001)" in w for w in saved.warnings)
    assert "rexnet_x1.0" in read_counts(tmp_path / "b")  # the counts do not depend on it


def test_save_refuses_what_cannot_be_saved(tmp_path):
    with pytest.raises(RexbenchError, match="--counts-only counts the models now"):
        save_baselines(SaveRequest(counts_only=True, from_records=(tmp_path,)))
    with pytest.raises(RexbenchError, match="give MODEL... or --all"):
        save_baselines(SaveRequest(directory=tmp_path / "b"))
