"""The recommendation: the fastest candidate of the last rung reached whose output is valid and,
with trained weights, whose top-1 agreement reaches --min-agreement; the front over every timed one."""

from __future__ import annotations

from rexbench.measure.checks.fidelity import Fidelity
from rexbench.measure.config import RunConfig
from rexbench.tune.pareto import Point
from rexbench.tune.recommend import eligible, front, may_go_on, recommend
from rexbench.tune.results import Result
from rexbench.tune.space import Candidate


def result(name: str, rung: int | None, ms: float | None, agreement: float | None, **kw) -> Result:
    config = RunConfig.preset(name, threads=1, batch_size=kw.pop("batch", 1))
    fid = None if agreement is None else Fidelity(agreement, 1.0, 1e-3, 216)
    median = None if ms is None else ms / 1e3
    return Result(
        Candidate(config), rung=rung, median_s=median, valid=kw.pop("valid", True), fidelity=fid
    )


FAST_UNFAITHFUL = result("openvino", 2, 5.0, 0.90)
FINALIST = result("ort", 2, 8.0, 0.995)
SLOW_FINALIST = result("max", 2, 9.0, 1.0)
SCREENED_ONLY = result("compile", 0, 4.0, 1.0)  # faster, but from a screen of 20 runs
INVALID = result("eager", 2, 1.0, 1.0, valid=False)
RESULTS = [FAST_UNFAITHFUL, FINALIST, SLOW_FINALIST, SCREENED_ONLY, INVALID]


def test_with_trained_weights_agreement_decides_among_the_last_rung() -> None:
    assert recommend(RESULTS, "latency", 0.99, trained=True) is FINALIST
    assert recommend(RESULTS, "latency", 0.999, trained=True) is SLOW_FINALIST
    assert recommend(RESULTS, "latency", 0.80, trained=True) is FAST_UNFAITHFUL
    assert recommend([FAST_UNFAITHFUL, INVALID], "latency", 0.99, trained=True) is None


def test_with_random_weights_the_output_check_alone_decides() -> None:
    assert recommend(RESULTS, "latency", 0.99, trained=False) is FAST_UNFAITHFUL
    assert not eligible(INVALID, 0.0, trained=False)
    assert not eligible(result("eager", None, None, None), 0.0, trained=False)
    assert eligible(result("eager", 0, 3.0, None), 0.99, trained=False)
    assert not eligible(result("eager", 0, 3.0, None), 0.99, trained=True)  # no fidelity yet


def test_throughput_compares_the_time_per_image() -> None:
    small = result("ort", 1, 4.0, 1.0, batch=1)  # 4 ms per image
    large = result("openvino", 1, 24.0, 1.0, batch=8)  # 3 ms per image
    assert recommend([small, large], "throughput", 0.99, trained=True) is large
    assert recommend([small, large], "latency", 0.99, trained=True) is small


def test_the_front_spans_every_timed_valid_candidate_with_a_fidelity() -> None:
    assert front(RESULTS, "latency") == [
        Point("compile t1 steady", 4.0, 1.0),
        # openvino (5 ms, 0.90) is behind compile in both; ort and max are slower than compile
    ]
    assert front([FAST_UNFAITHFUL, FINALIST, SLOW_FINALIST], "latency") == [
        Point("openvino t1 steady", 5.0, 0.90),
        Point("ort t1 steady", 8.0, 0.995),
        Point("max t1 steady", 9.0, 1.0),
    ]


def test_a_candidate_goes_on_until_its_agreement_is_known_to_be_too_low() -> None:
    unknown = result("ort", 0, 3.0, None)  # its fidelity was not measured in the screen
    assert may_go_on(unknown, 0.99, trained=True) and not eligible(unknown, 0.99, trained=True)
    assert not may_go_on(FAST_UNFAITHFUL, 0.99, trained=True)
    assert may_go_on(FAST_UNFAITHFUL, 0.99, trained=False)
    assert not may_go_on(INVALID, 0.0, trained=False)
