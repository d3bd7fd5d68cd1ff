"""The Pareto front of latency against top-1 agreement, as a pure function."""

from __future__ import annotations

from rexbench.tune.pareto import Point, dominates, pareto_front

A = Point("a", 10.0, 0.99)
B = Point("b", 5.0, 0.95)
C = Point("c", 12.0, 0.99)  # slower than a, no more faithful
D = Point("d", 5.0, 0.97)  # as fast as b, more faithful
E = Point("e", 20.0, 1.0)
F = Point("f", 10.0, 0.99)  # a's twin


def test_dominance_needs_one_strictly_better_number() -> None:
    assert dominates(A, C) and dominates(D, B)
    assert not dominates(A, F) and not dominates(F, A)  # equal in both
    assert not dominates(A, B) and not dominates(B, A)  # a trade-off
    assert not dominates(E, A) and not dominates(A, E)


def test_the_front_holds_the_undominated_fastest_first_with_one_name_per_place() -> None:
    assert pareto_front([A, B, C, D, E, F]) == [D, A, E]
    assert pareto_front([F, A]) == [F]  # of twins the first given stays
    assert pareto_front([C]) == [C]
    assert pareto_front([]) == []


def test_a_point_that_is_both_fastest_and_most_faithful_is_the_whole_front() -> None:
    best = Point("best", 1.0, 1.0)
    assert pareto_front([A, B, C, D, E, best]) == [best]
