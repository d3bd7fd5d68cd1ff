"""The budget (`--budget`) and the cost model that decides what fits in it."""

from __future__ import annotations

import pytest

from rexbench.errors import RexbenchError
from rexbench.tune.budget import (
    CALL_GUESS_S,
    SETUP_GUESS_S,
    Budget,
    CostModel,
    Observed,
    parse_budget,
    set_up_again,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10m", 600), ("90s", 90), ("1h", 3600), ("1m30s", 90), ("600", 600), ("2.5m", 150),
     (" 10M ", 600), ("1h2m3s", 3723), ("1m30", 90)],
)  # fmt: skip
def test_a_budget_reads_as_seconds(text: str, seconds: float) -> None:
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["ten", "10x", "m", "0", "0s", "-5m", "10m10m", "5s5s", "", "1.m"])
def test_a_bad_budget_is_one_line_naming_the_format(text: str) -> None:
    with pytest.raises(RexbenchError, match=r"^--budget .*: give a duration"):
        parse_budget(text)


def test_the_budget_counts_from_when_it_was_made() -> None:
    now = [100.0]
    budget = Budget(60.0, clock=lambda: now[0])
    now[0] = 115.5
    assert budget.elapsed() == 15.5 and budget.left() == 44.5


def test_costs_are_guessed_before_anything_was_measured() -> None:
    costs = CostModel()
    assert costs.setup_s("max") == SETUP_GUESS_S and costs.call_s("a", "max") == CALL_GUESS_S
    assert costs.cost_s([("a", "max")], 10) == SETUP_GUESS_S + 1.5 * 10 * CALL_GUESS_S


def test_costs_are_learned_from_a_measured_group() -> None:
    costs = CostModel()
    # a: 25 calls of 10 ms, prepared in 2 s; b failed; the group took 10 s, its rounds 0.5 s
    group = [Observed("a", "max", 25, 0.01, 2.0), Observed("b", "ort", 25, None, None)]
    costs.observe(group, wall_s=10.0, timed_s=0.5)
    # rounds / calls = 0.5 / 0.25; the rest (10 - 0.5 - 2) shared: 3.75 each
    assert costs.timed_s(1.0) == 2.0
    assert costs.setup_s("max") == 5.75 and costs.setup_s("ort") == 3.75
    assert costs.setup_s("eager") == 5.75  # a kind not seen yet: the longest setup seen
    assert costs.call_s("a", "max") == 0.01
    assert costs.call_s("other", "max") == 0.01  # by its kind, then by every call seen
    assert costs.call_s("other", "eager") == 0.01
    assert costs.cost_s([("a", "max"), ("c", "ort")], 25) == pytest.approx(5.75 + 3.75 + 2 * 0.5)


def test_a_kind_not_seen_yet_borrows_its_familys_figures() -> None:
    costs = CostModel()
    fp32, bf16, other = ("compile", "fp32"), ("compile", "bf16"), ("eager", "fp32")
    costs.observe([Observed("a", fp32, 10, 0.02, 40.0)], wall_s=50.0, timed_s=0.3)
    costs.observe([Observed("b", other, 10, 0.03, 1.0)], wall_s=3.0, timed_s=0.4)
    assert costs.setup_s(bf16) == costs.setup_s(fp32) == 50.0 - 0.3  # compile in another dtype
    assert costs.call_s("c", bf16) == 0.02
    assert costs.setup_s(("max", "fp32")) == 49.7  # an unknown preparation: the longest setup


def test_a_computation_set_up_again_is_costed_apart_from_its_first_setup() -> None:
    costs = CostModel()
    int8, again = ("ort_int8", "fp32"), set_up_again(("ort_int8", "fp32"))
    # quantized in 12 s the first time; the same graph from the cache in 1.5 s the second
    costs.observe([Observed("a", int8, 10, 0.01, 12.0)], wall_s=14.0, timed_s=0.2)
    assert costs.setup_s(again) == 13.8  # nothing set up again yet: its family's first setups
    costs.observe([Observed("b", again, 10, 0.012, 1.5)], wall_s=3.0, timed_s=0.2)
    assert costs.setup_s(int8) == 13.8 and costs.setup_s(again) == 2.8
    # the calls are the computation's, however it was set up
    assert costs.call_s("c", again) == costs.call_s("c", int8) == pytest.approx(0.011)
    # another preparation set up again: like every one set up again, not like its first setup
    ov = ("openvino_int8", "fp32")
    costs.observe([Observed("d", ov, 10, 0.01, 20.0)], wall_s=22.0, timed_s=0.2)
    assert costs.setup_s(set_up_again(ov)) == 2.8 and costs.setup_s(ov) == 21.8
    assert costs.setup_s(set_up_again(("max", "fp32"))) == 2.8
    assert costs.setup_s(("max", "fp32")) == 21.8  # an unknown first setup: the longest seen
