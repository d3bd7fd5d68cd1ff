"""The deploy snippet's check judged against rexbench's own plain loops of the winner, timed in a
real worker process right before and right after the snippet's run."""

from __future__ import annotations

from pathlib import Path

import pytest
from _tune_nets import GREY, WIDE, write_wide

from rexbench.measure.config import RunConfig
from rexbench.tune.bracket import Loops, Winner, around
from rexbench.tune.space import Candidate
from rexbench.tune.verify import Verification


def checked(median_ms: float, tune_ms: float) -> Verification:
    ratio = median_ms / tune_ms
    return Verification("deploy.py", 200, tune_ms, median_ms, ratio, abs(ratio - 1) <= 0.05)


def test_the_snippet_is_judged_against_the_mean_of_the_loops_around_it() -> None:
    # 10% slower than tune's rounds, as fast as rexbench's loops around it: confirmed
    v = checked(7.7, 7.0).with_loops(7.5, 7.9)
    assert v.rexbench_ms == pytest.approx(7.7) and v.bracketed == pytest.approx(1.0)
    assert v.within is True and v.ratio == pytest.approx(1.1)
    assert v.line == (
        "deploy snippet deploy.py: median 7.700 ms in a fresh process, 1.100 x tune's 7.000 ms; "
        "rexbench's worker timed it the same way right before and after: 7.500 and 7.900 ms, "
        "so 1.000 x: confirmed (within 5%)"
    )
    # as fast as tune's rounds, 10% faster than the loops around it: not confirmed
    faster = checked(7.0, 7.0).with_loops(7.7, 7.7)
    assert faster.bracketed == pytest.approx(7.0 / 7.7) and faster.within is False
    failed = Verification("deploy.py", 200, 7.0, error="exit 1: no module named openvino")
    assert failed.with_loops(7.5, 7.9) == failed and failed.rexbench_ms is None


def test_without_loops_the_line_says_why() -> None:
    v = Verification("deploy.py", 200, 7.0, 7.7, 1.1, False, unbracketed="its worker crashed")
    assert v.line.endswith(
        "1.100 x tune's 7.000 ms (its worker crashed): not within 5% (a busy "
        "machine moves both figures; run it again when quiet)"
    )


@pytest.fixture
def nets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_wide(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def winner(spec: str, name: str) -> Winner:
    candidate = Candidate(RunConfig.preset(name, threads=1, dtype="fp32"), "steady")
    return Winner(spec, candidate, (3, 16, 16), None, runs=20, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["eager", "ort"])
def test_a_worker_times_the_winner_before_and_after_what_runs_between(
    nets: Path, name: str
) -> None:
    ran: list[str] = []
    result, loops = around(winner(WIDE, name), lambda: ran.append("snippet") or "its result")
    assert result == "its result" and ran == ["snippet"]
    assert isinstance(loops, Loops), loops
    # medians of one call of a 16x16 net: well above nothing, well below a second
    assert 0 < loops.before_ms < 1000 and 0 < loops.after_ms < 1000


@pytest.mark.slow
def test_a_winner_the_worker_cannot_prepare_still_runs_the_snippet(nets: Path) -> None:
    ran: list[str] = []
    # a 1-channel net given 3-channel inputs: its preparation fails in the worker
    result, loops = around(winner(GREY, "eager"), lambda: ran.append("snippet") or 1)
    assert result == 1 and ran == ["snippet"]
    assert isinstance(loops, str)
    assert loops.startswith("rexbench's worker could not time it again: ")
    assert "channels" in loops
