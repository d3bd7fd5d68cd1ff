"""rexbench.report.changepoint on synthetic series with known steps."""

from __future__ import annotations

import numpy as np
import pytest

from rexbench.report.changepoint import detect_steps, exact_steps, split_test


def noisy(levels, sigma=0.02, seed=0):
    rng = np.random.default_rng(seed)
    levels = np.asarray(levels, float)
    return levels * np.exp(rng.normal(0.0, sigma, levels.size))


@pytest.mark.parametrize("seed", range(5))
def test_one_step_is_found_where_it_is(seed):
    values = noisy([30.0] * 25 + [34.5] * 15, seed=seed)  # +15% at commit 25
    (step,) = detect_steps(values)
    assert step.index == 25
    assert step.size == pytest.approx(0.15, abs=0.03) and step.confidence > 0.99


@pytest.mark.parametrize("seed", range(5))
def test_two_steps_are_both_found(seed):
    values = noisy([30.0] * 12 + [36.0] * 18 + [30.6] * 10, seed=seed)  # +20% at 12, -15% at 30
    steps = detect_steps(values)
    assert [s.index for s in steps] == [12, 30]
    assert steps[0].size > 0.15 and steps[1].size < -0.1


@pytest.mark.parametrize("seed", range(5))
def test_drift_without_a_step_is_not_a_step(seed):
    values = noisy(30.0 * (1 + 0.006 * np.arange(40)), seed=seed)  # +23% over 40 commits, smoothly
    assert detect_steps(values) == []
    # the same total change as one step is found
    assert [s.index for s in detect_steps(noisy([30.0] * 20 + [36.9] * 20, seed=seed))] == [20]


def test_noise_and_small_steps_are_not_reported():
    assert detect_steps(noisy([30.0] * 40, seed=7)) == []
    # +1.5% is significant with so little noise, but below min_size: a wiggle, not a step
    quiet = noisy([30.0] * 20 + [30.45] * 20, sigma=0.001, seed=1)
    assert detect_steps(quiet) == []
    assert [s.index for s in detect_steps(quiet, min_size=0.01)] == [20]


def test_step_sizes_are_between_the_adjacent_levels():
    steps = detect_steps([100] * 5 + [120] * 4 + [110] * 6, min_size=0.0, min_segment=1)
    assert [(s.index, round(s.size, 4)) for s in steps] == [(5, 0.2), (9, -0.0833)]
    assert detect_steps([7] * 10, min_size=0.0, min_segment=1) == []


def test_exact_counts_step_at_every_change_even_a_one_commit_blip():
    steps = exact_steps([100] * 4 + [120, 999, 120, 120])
    assert [(s.index, s.before, s.after, s.p_value) for s in steps] == [
        (4, 100, 120, 0.0),
        (5, 120, 999, 0.0),
        (6, 999, 120, 0.0),
    ]
    assert exact_steps([0, 0, 3])[0].size == 3 and exact_steps([5, 5]) == []


def test_short_segments_are_not_tested_and_zero_values_use_differences():
    assert split_test(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), min_segment=3) is None
    (step,) = detect_steps([0.0] * 6 + [5.0] * 6, min_size=0.0, min_segment=1)
    assert step.index == 6 and not step.relative and step.size == 5.0
