"""rexbench.rank.measures: every rank measure on matrices whose singular values are known."""

from __future__ import annotations

import math

import pytest
import torch

from rexbench.errors import RexbenchError
from rexbench.rank.measures import (
    FP64_EPS,
    Measure,
    default_rtol,
    from_singular_values,
    parse_measure,
    search_measures,
)


def _with_singular_values(rows: int, cols: int, values: list[float]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(2)
    u, _ = torch.linalg.qr(torch.randn(rows, rows, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(cols, cols, generator=gen, dtype=torch.float64))
    s = torch.zeros(rows, cols, dtype=torch.float64)
    for i, value in enumerate(values):
        s[i, i] = value
    return u @ s @ v.T


def _measure(matrix: torch.Tensor, name: str) -> float:
    sv = torch.linalg.svdvals(matrix)
    return float(from_singular_values(sv, parse_measure(name), tuple(matrix.shape), FP64_EPS))


def test_stable_rank_and_nuclear_norm_of_a_known_matrix() -> None:
    a = _with_singular_values(12, 5, [3.0, 2.0, 1.0])
    assert _measure(a, "srank") == pytest.approx((9 + 4 + 1) / 9)
    assert _measure(a, "nuclear") == pytest.approx((3 + 2 + 1) / 3)
    assert _measure(a, "rank") == 3
    assert _measure(a, "rank@0.4") == 2  # 1 < 0.4 x 3
    assert _measure(a, "rank@0.3") == 3


def test_effective_rank_of_identity_rank_one_and_a_known_spectrum() -> None:
    assert _measure(torch.eye(7, dtype=torch.float64), "erank") == pytest.approx(7.0)
    outer = torch.arange(1.0, 31.0, dtype=torch.float64).reshape(30, 1) @ torch.ones(1, 6).double()
    assert _measure(outer, "erank") == pytest.approx(1.0)
    # p = (3/4, 1/4): exp(-(3/4 ln 3/4 + 1/4 ln 1/4))
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert _measure(_with_singular_values(9, 4, [3.0, 1.0]), "erank") == pytest.approx(expected)


def test_measures_are_scale_free_bounded_by_the_rank_and_zero_for_zero() -> None:
    a = _with_singular_values(20, 8, [5.0, 3.0, 2.0, 1.0, 0.6])
    for m in search_measures():
        value = _measure(a, m.name)
        assert 1.0 <= value <= 5.0 + 1e-9, m.name
        assert _measure(1000.0 * a, m.name) == pytest.approx(value), m.name
        assert _measure(torch.zeros(6, 4, dtype=torch.float64), m.name) == 0.0


def test_batched_singular_values_give_one_value_per_matrix() -> None:
    stack = torch.stack([_with_singular_values(10, 6, [1.0] * k) for k in (1, 3, 6)])
    values = from_singular_values(torch.linalg.svdvals(stack), Measure("erank"), (10, 6))
    assert values.tolist() == pytest.approx([1.0, 3.0, 6.0])


def test_default_tolerance_follows_the_dtype() -> None:
    assert default_rtol(100, 40) == 100 * torch.finfo(torch.float32).eps
    assert default_rtol(100, 40, FP64_EPS) == 100 * torch.finfo(torch.float64).eps
    # 1e-9 survives fp64's default tolerance (100 x 2.2e-16) but not fp32's (100 x 1.2e-7)
    a = _with_singular_values(100, 40, [1.0, 1e-9])
    sv = torch.linalg.svdvals(a)
    assert int(from_singular_values(sv, Measure("rank"), (100, 40))) == 1
    assert int(from_singular_values(sv, Measure("rank"), (100, 40), FP64_EPS)) == 2


def test_measure_names() -> None:
    assert parse_measure("rank@1e-3") == Measure("rank@", 1e-3)
    assert parse_measure("rtol:0.01").name == "rank@0.01"
    assert parse_measure("Effective").name == "erank" and parse_measure("stable").name == "srank"
    assert parse_measure("nuclear").integer is False and parse_measure("rank").integer is True
    assert [m.name for m in search_measures()] == [
        "rank",
        *(f"rank@{r:g}" for r in (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)),
        "erank",
        "srank",
        "nuclear",
    ]
    for bad, message in [
        ("rank@2", "must be a number in"),
        ("rank@x", "must be a number in"),
        ("frobenius", "unknown rank measure"),
        ("rank@", "must be a number in"),
    ]:
        with pytest.raises(RexbenchError, match=message):
            parse_measure(bad)
