"""The deploy snippet's check judged against the drift anchor: the anchor timed in tune's rounds
(from the winner's record) and again around the snippet's run, their ratio taken out of the
snippet's."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch
from _gate_data import record

from rexbench.measure.config import RunConfig
from rexbench.tune.results import Result
from rexbench.tune.space import Candidate
from rexbench.tune.verify import Verification, anchor_ms, run_anchored, run_snippet


def checked(median_ms: float, tune_ms: float) -> Verification:
    ratio = median_ms / tune_ms
    return Verification("deploy.py", 200, tune_ms, median_ms, ratio, abs(ratio - 1) <= 0.05)


def test_a_machine_slower_by_the_anchors_measure_confirms_the_snippet() -> None:
    # the snippet 1.10 x tune's figure, the anchor 1.08 x its time in tune's rounds
    v = checked(7.7, 7.0).with_anchor(2.5, 2.7)
    assert v.ratio == pytest.approx(1.1) and v.drift == pytest.approx(1.08)
    assert v.anchored == pytest.approx(1.1 / 1.08) and v.within is True
    assert v.line.endswith(
        "1.100 x tune's 7.000 ms; the drift anchor ran 1.080 x its time in tune's rounds, "
        "so 1.019 x with the drift taken out: confirmed (within 5%)"
    )
    # a steady anchor leaves the raw ratio as it is: not within 5%
    steady = checked(7.7, 7.0).with_anchor(2.5, 2.5)
    assert steady.anchored == pytest.approx(1.1) and steady.within is False
    # the anchor can also hide a raw agreement: a faster machine and the same figure
    assert checked(7.0, 7.0).with_anchor(2.5, 2.0).within is False


def test_a_snippet_that_did_not_run_keeps_its_error() -> None:
    failed = Verification("deploy.py", 200, 7.0, error="exit 1: no module named openvino")
    assert failed.with_anchor(2.5, 2.7) == failed


def test_the_record_gives_the_anchor_of_its_rounds() -> None:
    measured = record(median_ms=7.0, anchor_ms=2.5)
    result = Result(Candidate(RunConfig.preset("eager", threads=2)))
    result.measured(measured, 3)
    assert result.anchor == (statistics.median(measured.timing.anchor_ns) / 1e9, 1)
    without = record(median_ms=7.0, anchor_ms=None)
    result.measured(without, 3)
    assert result.anchor is None


def test_the_anchor_is_timed_here_at_its_threads_and_leaves_torchs_threads_alone() -> None:
    before = torch.get_num_threads()
    ms = anchor_ms(1, calls=20)
    assert torch.get_num_threads() == before
    assert 0.1 < ms < 200  # 5 ms at 1 thread on this project's machine


def test_without_an_anchor_the_check_is_the_raw_one(tmp_path: Path) -> None:
    path = tmp_path / "deploy_fixed.py"
    path.write_text('import json\nprint(json.dumps({"median_ms": 7.7}))\n')
    raw = run_snippet(path, 20, 7.0, timeout=60)
    assert run_anchored(path, 20, 7.0, 60, None) == raw
    assert raw.ratio == pytest.approx(1.1) and raw.within is False and raw.drift is None
    anchored = run_anchored(path, 20, 7.0, 60, (0.0025, 1))
    assert anchored.anchor_ms == pytest.approx(2.5) and anchored.anchor_now_ms > 0
    assert anchored.anchored == pytest.approx(1.1 * 2.5 / anchored.anchor_now_ms)
