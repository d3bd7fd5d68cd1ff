"""How long the screen of a search may run: the budget less what the rungs after it would cost for
the candidates screened so far, and less the deploy snippet's check (hand-computed costs)."""

from __future__ import annotations

import pytest

from rexbench.measure.config import RunConfig
from rexbench.tune import halving
from rexbench.tune.budget import Budget, CostModel, Observed, rungs_s, set_up_again
from rexbench.tune.search import LATER_MARGIN, Request, Search
from rexbench.tune.space import Candidate

LABELS = ("eager", "channels_last", "max", "ort", "openvino")


def test_a_plan_costs_each_rung_with_its_best_candidates() -> None:
    costs = CostModel()
    costs.observe([Observed("a", "max", 25, 0.01, 2.0)], wall_s=4.0, timed_s=0.5)
    costs.observe([Observed("b", "ort", 25, 0.002, 0.5)], wall_s=1.0, timed_s=0.1)
    ranked = [("b", "ort"), ("a", "max")]
    assert rungs_s(costs, ranked, [(2, 50), (1, 1020)]) == pytest.approx(
        costs.cost_s(ranked, 50) + costs.cost_s(ranked[:1], 1020)
    )
    assert rungs_s(costs, ranked, []) == 0.0


def search(count: int) -> Search:
    """A search over `count` candidates, its budget 600 s on a clock standing at 0 s."""
    candidates = [
        Candidate(RunConfig.preset(label, threads=threads, dtype="fp32"))
        for threads in (1, 2)
        for label in LABELS
    ][:count]
    request = Request("rexnet_x1.0", candidates, budget_s=600.0)
    return Search(request, Budget(600.0, clock=lambda: 0.0))


def screened(s: Search, medians_ms: list[float]) -> list:
    """The first candidates timed in the screen with these medians (each set up in 4 s)."""
    out = []
    for candidate, ms in zip(s.request.candidates, medians_ms, strict=False):
        result = s.results[candidate.key]
        result.rung, result.median_s, result.valid, result.runs = 0, ms / 1e3, True, 20
        s.costs.observe([Observed(candidate.key, candidate.kind, 25, ms / 1e3, 4.0)], 4.0, 0.0)
        out.append(candidate)
    return out


def test_the_screen_keeps_what_the_later_rungs_and_the_snippet_need() -> None:
    s = search(10)
    s.reserve = lambda best, search: 7.0 if best is s.request.candidates[2] else 99.0
    done = screened(s, [30.0, 20.0, 10.0, 40.0])
    waiting = list(s.request.candidates[4:8])
    screen = halving.Rung(0, 10, 20, 5)
    room = s._screen_room(screen, done + waiting, start=0.0)
    # 8 candidates: rungs of 4 x 40 runs, 2 x 1000 (final); the best first, then the waiting ones
    best = [done[2], done[1], done[0], done[3], *waiting]
    items = [(c.key, c.kind) for c in best]
    later_s = s.costs.cost_s(items[:4], 40 + 10) + s.costs.cost_s(items[:2], 1000 + 20)
    later_s += s._fidelity_s(best[:4], halving.Rung(1, 4, 40, 10))
    assert room == pytest.approx(600.0 - 7.0 - LATER_MARGIN * later_s)
    # screening more candidates leaves the screen less room
    assert s._screen_room(screen, done + waiting[:2], start=0.0) > room
    assert s._screen_room(screen, done + waiting, start=100.0) == pytest.approx(room - 100.0)


def test_a_candidate_that_failed_the_screen_is_not_planned_for() -> None:
    s = search(5)
    done = screened(s, [30.0, 20.0, 10.0, 40.0, 50.0])
    screen = halving.Rung(0, 5, 20, 5)
    before = s._screen_room(screen, done, start=0.0)  # 5: rungs of 3 x 40 runs, then 2 x 1000
    s.results[done[4].key].valid = False  # its output differs from eager's: 4 go on, 2 x 1000
    final = [done[2], done[1]]
    later_s = s.costs.cost_s([(c.key, c.kind) for c in final], 1020)
    later_s += s._fidelity_s(final, halving.Rung(1, 2, 1000, 20, final=True))
    assert s._screen_room(screen, done, start=0.0) == pytest.approx(600.0 - LATER_MARGIN * later_s)
    assert s._screen_room(screen, done, start=0.0) > before


def test_a_computation_prepared_before_is_costed_as_set_up_again_where_that_is_cheap() -> None:
    ort, pt2e = (Candidate(RunConfig.preset(n, threads=2)) for n in ("ort", "pt2e_int8"))
    other = Candidate(RunConfig.preset("ort", threads=1), "jemalloc")
    s = Search(Request("rexnet_x1.0", [ort, other, pt2e], budget_s=600.0), Budget(600.0))
    assert s._kind(ort) == ort.kind and s._kind(ort, later=True) == set_up_again(ort.kind)
    # ort's graph comes from the search's cache; PT2E calibrates again at every preparation
    assert s._kind(pt2e, later=True) == pt2e.kind
    s.prepared.add((ort.numerics, 1))
    assert s._kind(other) == set_up_again(other.kind)  # its threads and allocator do not matter
