"""Steps in a metric's history: where a series changed level, by how much, and how sure that is.

Method: binary segmentation (Scott & Knott 1974; Killick & Eckley's survey, section 2) with a
permutation test at each split, in numpy alone.

For a segment y (log values when all are positive: latencies change by factors), compare two
models: one *step* (two constant levels, split at the best k, least squares) against one *line*
(y = a + b t). The statistic is T = SSE(line) / SSE(best step). A real step leaves a line with large
residuals and two flat levels with small ones (T >> 1); noise gives T near 1; a slow drift is fitted
better by the line than by any step (T < 1), so drift is not reported as a step. The confidence
comes from a permutation test against "a line plus exchangeable noise": the line's residuals are
shuffled `n_perm` times, added back to the line, and T recomputed (best split again each time);
p = (1 + #{T* >= T}) / (1 + n_perm). A step is kept when p < alpha and its size (the change of
the median level, relative) is at least `min_size` - "not every wiggle" - and each side has at
least `min_segment` points, and it moves the median level by at least NOISE_FACTOR times the
segment's point-to-point noise (`noise_sd`: a few low points at the end of a level are not a
step); then both sides are searched again.

Why not PELT (the `ruptures` package): it needs a penalty tuned per metric and noise level, and gives
no confidence per change point; a CI summary should say how sure each step is. Binary segmentation
can miss two close opposite steps (each side looks flat): with `min_segment` points per side and
the recursion on both halves this matters only for steps shorter than `min_segment` commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

ALPHA = 0.01
N_PERM = 999
MIN_SEGMENT = 3
NOISE_FACTOR = 2.5  # a step must also move the level by this many noise standard deviations


@dataclass(frozen=True)
class Step:
    """A change of level: `index` is the first point of the new level."""

    index: int
    before: float  # median of the segment before (original units)
    after: float  # median of the segment after
    size: float  # after / before - 1 (or the difference when values are not all positive)
    p_value: float
    relative: bool = True

    @property
    def confidence(self) -> float:
        return 1.0 - self.p_value

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "confidence": self.confidence}


def _step_sse(y: np.ndarray, min_segment: int) -> tuple[np.ndarray, np.ndarray]:
    """Best-split SSE and its split index for every row of y (shape runs x n)."""
    n = y.shape[-1]
    ks = np.arange(min_segment, n - min_segment + 1)
    c1 = np.cumsum(y, axis=-1)
    c2 = np.cumsum(y * y, axis=-1)
    total1, total2 = c1[..., -1:], c2[..., -1:]
    left1, left2 = c1[..., ks - 1], c2[..., ks - 1]
    right1, right2 = total1 - left1, total2 - left2
    sse = (left2 - left1**2 / ks) + (right2 - right1**2 / (n - ks))
    best = np.argmin(sse, axis=-1)
    return np.take_along_axis(sse, best[..., None], -1)[..., 0], ks[best]


def _line(y: np.ndarray) -> np.ndarray:
    """Least-squares line through every row of y (shape ... x n), evaluated at 0..n-1."""
    n = y.shape[-1]
    t = np.arange(n, dtype=float) - (n - 1) / 2
    mean = y.mean(axis=-1, keepdims=True)
    slope = (y * t).sum(axis=-1, keepdims=True) / float(t @ t)
    return mean + slope * t


def _ratio(line_sse: np.ndarray, step_sse: np.ndarray) -> np.ndarray:
    tiny = 1e-12 * max(1.0, float(np.max(line_sse)))
    return np.where(
        step_sse <= tiny,
        np.where(line_sse <= tiny, 1.0, np.inf),
        line_sse / np.maximum(step_sse, tiny),
    )


def split_test(
    y: np.ndarray, min_segment: int = MIN_SEGMENT, n_perm: int = N_PERM, seed: int = 0
) -> tuple[int, float] | None:
    """(best split index, permutation p-value) of one segment, or None when it is too short."""
    if y.size < 2 * min_segment or y.size < 3:
        return None
    fit = _line(y)
    resid = y - fit
    line_sse = float(resid @ resid)
    step_sse, k = _step_sse(y[None, :], min_segment)
    observed = _ratio(np.array([line_sse]), step_sse)[0]
    rng = np.random.default_rng(seed)
    perms = fit + rng.permuted(np.tile(resid, (n_perm, 1)), axis=1)
    p_resid = perms - _line(perms)
    null = _ratio(np.einsum("ij,ij->i", p_resid, p_resid), _step_sse(perms, min_segment)[0])
    margin = 0.0 if np.isinf(observed) else 1e-12 * abs(observed)
    p = (1 + int(np.sum(null >= observed - margin))) / (1 + n_perm)
    return int(k[0]), p


def noise_sd(y: np.ndarray) -> float:
    """Point-to-point noise of a series, robust to its steps: 1.4826 x MAD of the first differences
    / sqrt(2) (a difference of two independent points has twice the variance)."""
    if y.size < 3:
        return 0.0
    d = np.diff(y)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2))


def detect_steps(
    values: Sequence[float],
    *,
    alpha: float = ALPHA,
    min_size: float = 0.03,
    min_segment: int = MIN_SEGMENT,
    n_perm: int = N_PERM,
    seed: int = 0,
) -> list[Step]:
    """The steps of a series, in order of position (see the module docstring)."""
    x = np.asarray(values, dtype=float)
    relative = bool(x.size) and bool(np.all(x > 0))
    y = np.log(x) if relative else x
    found: list[Step] = []
    pending = [(0, x.size)]
    while pending:
        lo, hi = pending.pop()
        tested = split_test(y[lo:hi], min_segment, n_perm, seed + lo)
        if tested is None:
            continue
        k, p = tested
        before, after = float(np.median(x[lo : lo + k])), float(np.median(x[lo + k : hi]))
        size = after / before - 1 if relative else after - before
        jump = abs(float(np.median(y[lo + k : hi]) - np.median(y[lo : lo + k])))
        if p >= alpha or abs(size) < min_size or jump < NOISE_FACTOR * noise_sd(y[lo:hi]):
            continue
        found.append(Step(lo + k, before, after, size, p_value=p, relative=relative))
        pending += [(lo, lo + k), (lo + k, hi)]
    return _levels(x, sorted(found, key=lambda s: s.index))


def _levels(x: np.ndarray, steps: list[Step]) -> list[Step]:
    """Each step's before / after / size from the final segmentation: the median levels of the
    segments on either side of it (not of the wider segment it was found in)."""
    bounds = [0, *(s.index for s in steps), x.size]
    out = []
    for i, s in enumerate(steps):
        before = float(np.median(x[bounds[i] : bounds[i + 1]]))
        after = float(np.median(x[bounds[i + 1] : bounds[i + 2]]))
        size = after / before - 1 if s.relative else after - before
        out.append(Step(s.index, before, after, size, p_value=s.p_value, relative=s.relative))
    return out


def exact_steps(values: Sequence[float]) -> list[Step]:
    """Every change of a noise-free series (parameter or MAC counts): a step with p = 0."""
    x = [float(v) for v in values]
    relative = all(v > 0 for v in x)
    return [
        Step(
            i,
            x[i - 1],
            x[i],
            (x[i] / x[i - 1] - 1) if relative else x[i] - x[i - 1],
            p_value=0.0,
            relative=relative,
        )
        for i in range(1, len(x))
        if x[i] != x[i - 1]
    ]
