"""Rank measures of a feature matrix, all computed from its singular values.

The paper's rank ratio is rank(f(WX)) / d_out, but "rank" of a floating-point matrix needs a reading:

- ``rank``: numerical rank at the default tolerance, singular values above max(rows, cols) x eps x
  sigma_max, eps of the dtype the features were computed in (torch.linalg.matrix_rank's own rule).
- ``rank@RTOL``: numerical rank at a relative tolerance, singular values above RTOL x sigma_max
  (e.g. ``rank@1e-3``; the search tries 1e-6 .. 1e-1).
- ``erank``: effective rank (Roy and Vetterli, 2007): exp of the Shannon entropy of the singular
  values normalised to sum 1, p_k = sigma_k / sum(sigma).
- ``srank``: stable rank ||A||_F^2 / ||A||_2^2 = sum(sigma^2) / sigma_max^2.
- ``nuclear``: nuclear norm ||A||_* = sum(sigma) (the rank proxy of the paper's Table 2), divided by
  the spectral norm sigma_max so that it is scale-free and, like a rank, lies in [1, rank(A)].

Every measure of a rank-r matrix lies in [0, r] (0 only for the zero matrix), so measure / d_out is a
rank ratio in [0, 1] for each of them. The continuous measures (erank, srank, nuclear) weigh small
singular values by their size instead of cutting them at a tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    import torch

FP32_EPS = 2.0**-23  # torch.finfo(torch.float32).eps
FP64_EPS = 2.0**-52  # torch.finfo(torch.float64).eps
EPS = {"fp32": FP32_EPS, "fp64": FP64_EPS}

KINDS = {
    "rank": "numerical rank, tolerance max(rows, cols) x eps x sigma_max",
    "rank@": "numerical rank, tolerance RTOL x sigma_max",
    "erank": "effective rank exp(H(sigma / sum sigma)) (Roy and Vetterli 2007)",
    "srank": "stable rank ||A||_F^2 / ||A||_2^2",
    "nuclear": "nuclear norm / spectral norm, ||A||_* / ||A||_2",
}
SEARCH_RTOLS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


@dataclass(frozen=True)
class Measure:
    """A parsed measure name: its kind ('rank', 'rank@', 'erank', 'srank', 'nuclear') and rtol."""

    kind: str
    rtol: float | None = None

    @property
    def name(self) -> str:
        return f"rank@{self.rtol:g}" if self.kind == "rank@" else self.kind

    @property
    def integer(self) -> bool:
        """Whether the measure counts singular values (an integer rank)."""
        return self.kind in ("rank", "rank@")

    def describe(self) -> str:
        if self.kind == "rank@":
            return f"numerical rank, tolerance {self.rtol:g} x sigma_max"
        return KINDS[self.kind]


def default_rtol(rows: int, cols: int, eps: float = FP32_EPS) -> float:
    """max(rows, cols) * eps: torch.linalg.matrix_rank's own default (eps of the matrix's dtype).

    Stated explicitly so that the rank does not depend on the dtype the SVD runs in. On fp32 features
    of this study (d_out 16..96, N = 64..192 rows) singular values that are zero in exact arithmetic
    (linear 1x1 outputs beyond d_in: at most 3.5e-7 x sigma_max over 20 networks x 10 ratios) sit
    20-65x below this tolerance, so it separates fp32 noise from rank; smooth nonlinearities leave
    genuine but decaying singular values, which is why the measured rank is a property of the
    tolerance as much as of the layer (the search in benchmarks/rank_readings.py tries several).
    """
    return max(rows, cols) * eps


def parse_measure(name: str) -> Measure:
    """'rank', 'rank@1e-3' (also 'rtol:1e-3'), 'erank', 'srank' or 'nuclear' (case folded)."""
    text = name.strip().lower().replace("rtol:", "rank@").replace("rank:", "rank@")
    aliases = {"effective": "erank", "stable": "srank", "nuc": "nuclear", "exact": "rank"}
    text = aliases.get(text, text)
    if text.startswith("rank@"):
        try:
            rtol = float(text[5:])
        except ValueError:
            rtol = math.nan
        if not 0.0 < rtol < 1.0:
            raise RexbenchError(f"--rank-measure {name}: the tolerance must be a number in (0, 1)")
        return Measure("rank@", rtol)
    if text not in KINDS or text == "rank@":
        known = "rank, rank@RTOL (e.g. rank@1e-3), erank, srank, nuclear"
        raise RexbenchError(f"unknown rank measure {name!r}; known: {known}")
    return Measure(text)


def search_measures() -> tuple[Measure, ...]:
    """Every measure the reading search tries: exact rank, six relative tolerances, three soft ones."""
    rtols = tuple(Measure("rank@", r) for r in SEARCH_RTOLS)
    return (Measure("rank"), *rtols, Measure("erank"), Measure("srank"), Measure("nuclear"))


def from_singular_values(
    values: torch.Tensor, measure: Measure, shape: tuple[int, int], eps: float = FP32_EPS
) -> torch.Tensor:
    """The measure of each matrix from its singular values (..., k), descending; float64 (...).

    `shape` is the (rows, cols) of the matrices, for the default tolerance; `eps` that of their dtype.
    """
    import torch

    sv = values.double()
    top = sv[..., 0]
    zero = top <= 0
    safe_top = torch.where(zero, torch.ones_like(top), top)
    if measure.kind in ("rank", "rank@"):
        rtol = default_rtol(*shape, eps) if measure.kind == "rank" else measure.rtol
        out = (sv > rtol * safe_top.unsqueeze(-1)).sum(-1).double()
    elif measure.kind == "erank":
        p = sv / torch.where(zero, torch.ones_like(top), sv.sum(-1)).unsqueeze(-1)
        entropy = -(torch.special.xlogy(p, p)).sum(-1)
        out = torch.exp(entropy)
    elif measure.kind == "srank":
        out = (sv**2).sum(-1) / safe_top**2
    else:  # nuclear
        out = sv.sum(-1) / safe_top
    return torch.where(zero, torch.zeros_like(out), out)


def matrix_rank(features: torch.Tensor, rtol: float | None = None) -> torch.Tensor:
    """Numerical rank of a (..., rows, cols) matrix (or batch) with tolerance rtol x sigma_max.

    rtol=None means `default_rtol(rows, cols)`, the fp32 rule whatever the dtype of `features`.
    """
    import torch

    rows, cols = features.shape[-2:]
    tol = default_rtol(rows, cols) if rtol is None else rtol
    return torch.linalg.matrix_rank(features, rtol=tol)
