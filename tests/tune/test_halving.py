"""Successive halving as pure functions: the schedule of rungs, who goes on, the re-planned rest."""

from __future__ import annotations

from rexbench.tune.halving import Rung, next_rungs, promote, schedule, warmup_for


def test_each_rung_halves_the_candidates_and_doubles_the_runs_until_the_finalists() -> None:
    assert schedule(10) == [
        Rung(0, 10, 20, 5),
        Rung(1, 5, 40, 10),
        Rung(2, 3, 80, 20),
        Rung(3, 2, 1000, 20, final=True),
    ]


def test_the_schedule_takes_its_numbers_from_the_arguments() -> None:
    assert schedule(40, screen_runs=10, full_runs=100, finalists=3) == [
        Rung(0, 40, 10, 2),
        Rung(1, 20, 20, 5),
        Rung(2, 10, 40, 10),
        Rung(3, 5, 80, 20),
        Rung(4, 3, 100, 20, final=True),
    ]
    # the runs never pass the finalists' own
    assert [r.runs for r in schedule(64, screen_runs=30, full_runs=100)] == [
        30,
        60,
        100,
        100,
        100,
        100,
    ]


def test_few_candidates_go_straight_to_the_final_rung() -> None:
    assert schedule(2) == [Rung(0, 2, 1000, 20, final=True)]
    assert schedule(1) == [Rung(0, 1, 1000, 20, final=True)]
    assert schedule(3) == [Rung(0, 3, 20, 5), Rung(1, 2, 1000, 20, final=True)]
    assert schedule(0) == []


def test_warmup_is_a_quarter_of_the_runs_between_2_and_20() -> None:
    assert [warmup_for(n) for n in (1, 4, 8, 20, 40, 80, 81, 1000)] == [2, 2, 2, 5, 10, 20, 20, 20]


def test_promote_keeps_the_cheapest_and_never_a_candidate_without_a_cost() -> None:
    measured = [("a", 3.0), ("b", None), ("c", 1.0), ("d", 3.0), ("e", 2.0)]
    assert promote(measured, 3) == ["c", "e", "a"]  # a before d: equal costs keep their order
    assert promote(measured, 10) == ["c", "e", "a", "d"]
    assert promote(measured, 0) == []
    assert promote([("x", None)], 1) == []


def test_the_rest_is_replanned_for_the_candidates_that_came_through() -> None:
    screen = Rung(0, 40, 20, 5)
    # 12 of the 40 screened (the budget ended the screen early): 6, then 3, then the final 2
    assert next_rungs(12, screen) == [
        Rung(1, 6, 40, 10),
        Rung(2, 3, 80, 20),
        Rung(3, 2, 1000, 20, final=True),
    ]
    assert next_rungs(2, screen) == [Rung(1, 2, 1000, 20, final=True)]
    assert next_rungs(1, screen, full_runs=300) == [Rung(1, 1, 300, 20, final=True)]
    assert next_rungs(0, screen) == []
    assert next_rungs(5, Rung(3, 2, 1000, 20, final=True)) == []
