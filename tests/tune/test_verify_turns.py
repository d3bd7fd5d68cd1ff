"""The deploy snippet's check judged against rexbench's own calls of the winner, timed in a real
worker process in turns with the snippet's calls (the snippet waits on its stdin between parts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _tune_nets import GREY, WIDE, write_wide

from rexbench.measure.config import RunConfig
from rexbench.tune.deploy import Deployment, snippet
from rexbench.tune.space import Candidate
from rexbench.tune.turns import Turns, Winner, in_turns
from rexbench.tune.verify import PARTS, Verification, run_snippet


def checked(median_ms: float, tune_ms: float) -> Verification:
    ratio = median_ms / tune_ms
    return Verification("deploy.py", 200, tune_ms, median_ms, ratio, abs(ratio - 1) <= 0.05)


def test_the_snippet_is_judged_against_rexbenchs_calls_in_turns_with_it() -> None:
    # 10% slower than tune's rounds, as fast as rexbench's calls in turns with it: confirmed
    v = checked(7.7, 7.0).with_turns(7.6, 11)
    assert v.side_by_side == pytest.approx(7.7 / 7.6) and v.within is True
    assert v.ratio == pytest.approx(1.1)
    assert v.line == (
        "deploy snippet deploy.py: median 7.700 ms in a fresh process, 1.100 x tune's 7.000 ms; "
        "rexbench's worker timed it in turns with the snippet (11 turns): 7.600 ms, "
        "so 1.013 x: confirmed (within 5%)"
    )
    # as fast as tune's rounds, 10% faster than rexbench's calls beside it: not confirmed
    faster = checked(7.0, 7.0).with_turns(7.7, 11)
    assert faster.side_by_side == pytest.approx(7.0 / 7.7) and faster.within is False
    failed = Verification("deploy.py", 200, 7.0, error="exit 1: no module named openvino")
    assert failed.with_turns(7.5, 11) == failed


def test_without_turns_the_line_says_why() -> None:
    v = Verification("deploy.py", 200, 7.0, 7.7, 1.1, False, no_turns="its worker crashed")
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
    return Winner(spec, candidate, (3, 16, 16), None, calls=5, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["eager", "ort"])
def test_a_worker_takes_a_turn_at_each_call_and_once_after(nets: Path, name: str) -> None:
    def check(turn):
        for _ in range(3):
            turn()
        return "its result"

    result, turns = in_turns(winner(WIDE, name), check)
    assert result == "its result" and isinstance(turns, Turns), turns
    assert turns.taken == 4 and len(turns.samples) == 4 * 5 and not turns.failed
    assert 0 < turns.median_ms < 1000  # one call of a 16x16 net


@pytest.mark.slow
def test_a_winner_the_worker_cannot_prepare_is_checked_without_turns(nets: Path) -> None:
    given: list[object] = []
    # a 1-channel net given 3-channel inputs: its preparation fails in the worker
    result, turns = in_turns(winner(GREY, "eager"), lambda turn: given.append(turn) or 1)
    assert result == 1 and given == [None]
    assert isinstance(turns, str)
    assert turns.startswith("rexbench's worker could not time it again: ")
    assert "channels" in turns


@pytest.mark.slow
def test_the_snippet_waits_for_each_turn_on_its_stdin(nets: Path) -> None:
    path = nets / "deploy_eager.py"
    candidate = Candidate(RunConfig.preset("eager", threads=1), "steady")
    path.write_text(snippet(Deployment(WIDE, None, candidate, (3, 16, 16))))
    calls: list[int] = []
    checked = run_snippet(path, 40, 1.0, timeout=120, turn=lambda: calls.append(1))
    assert checked.error is None, checked.error
    assert len(calls) == PARTS and checked.runs == 40 and checked.median_ms > 0
    # and on its own (run by hand, or by tune without a worker): one loop, no turns
    calls.clear()
    alone = run_snippet(path, 40, 1.0, timeout=120)
    assert alone.error is None and calls == [] and alone.median_ms > 0


@pytest.mark.slow
def test_a_snippet_that_hangs_is_stopped_at_its_timeout(nets: Path) -> None:
    path = nets / "hangs.py"
    path.write_text("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    turns: list[int] = []
    checked = run_snippet(path, 20, 1.0, timeout=2, turn=lambda: turns.append(1))
    assert checked.error == "it ran past 2 s" and turns == [1]
