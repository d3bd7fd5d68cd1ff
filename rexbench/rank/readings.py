"""Readings of the paper's section 3.2: the choices its text leaves open, as one value object.

The paper fixes the blocks, the nonlinearities, "f with the normalization (BN)", the range of
d_in/d_out and N > d_out > d_in. It leaves open how rank is measured, which matrix it is taken of,
what the input is, how large N is, where the BN sits and in which mode, the precision and the range of
d_out. A `Reading` names one choice for each:

- ``measure``: see `rexbench.rank.measures` (rank, rank@RTOL, erank, srank, nuclear).
- ``matrix``: ``positions`` (rows = every batch x H x W position, channels as columns), ``pooled``
  (global average pooling first: rows = images, the features a classifier sees) or ``per-position``
  (one images x channels matrix per spatial position on the grid's diagonal, the measure averaged).
- ``inputs``: i.i.d. ``gaussian`` N(0, 1); ``uniform`` on [-sqrt 3, sqrt 3]; ``relu``: ReLU of a
  Gaussian (non-negative, like a previous ReLU layer's output); ``smooth``: Gaussian noise blurred
  twice with a 3x3 box (spatially correlated, like images), re-standardised; ``lowrank``: d_in channels
  mixed from ceil(d_in / 2) Gaussian ones (rank(X) = ceil(d_in / 2)).
- ``n_ratio``: N / d_out, the rows of the feature matrix per output channel (the paper: N > d_out).
- ``bn``: ``pre`` (conv -> BN -> f, the usual order), ``post`` (conv -> f -> BN) or ``none``;
  ``bn_mode``: ``train`` (batch statistics) or ``eval`` (PyTorch's initial running statistics, mean 0
  and variance 1, so BN only divides by sqrt(1 + 1e-5)).
- ``init``: the conv weights: ``he`` N(0, 1/fan_in) (unit-variance pre-activations for unit inputs),
  ``torch`` (PyTorch's default conv init, U(+-1/sqrt(fan_in)), so variance 1/3) or ``normal`` N(0, 1)
  (pre-activation variance fan_in). It matters only where no train-mode BN sits between conv and f.
- ``dtype``: ``fp32`` or ``fp64`` for the forward pass and the SVD (the default tolerance follows).
- ``d_out_range``: the range d_out is drawn from (the paper gives none); ``spatial``: H = W of the
  input (1: N is the batch, as the paper's notation reads literally).
- ``centre``: subtract each column's mean from the feature matrix before measuring.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.rank.measures import EPS, Measure, parse_measure

if TYPE_CHECKING:
    import torch

MATRICES = ("positions", "pooled", "per-position")
INPUTS = ("gaussian", "uniform", "relu", "smooth", "lowrank")
BN_PLACES = ("pre", "post", "none")
BN_MODES = ("train", "eval")
DTYPES = ("fp32", "fp64")
INITS = ("he", "torch", "normal")


@dataclass(frozen=True)
class Reading:
    """One reading of section 3.2. The defaults are `rexbench rank study`'s: the reading closest to
    the paper's text (why: `rexbench.rank.study`), since no reading searched reproduces Figure 1."""

    measure: str = "rank"
    matrix: str = "positions"
    inputs: str = "gaussian"
    n_ratio: float = 2.0
    bn: str = "pre"
    bn_mode: str = "train"
    init: str = "he"
    dtype: str = "fp32"
    d_out_range: tuple[int, int] = (16, 96)
    spatial: int = 1
    centre: bool = False

    def __post_init__(self) -> None:
        parse_measure(self.measure)
        for name, allowed in (
            ("matrix", MATRICES),
            ("inputs", INPUTS),
            ("bn", BN_PLACES),
            ("bn_mode", BN_MODES),
            ("init", INITS),
            ("dtype", DTYPES),
        ):
            if getattr(self, name) not in allowed:
                raise RexbenchError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        lo, hi = self.d_out_range
        if not 2 <= lo <= hi:
            raise RexbenchError(f"d_out range must satisfy 2 <= min <= max, got {lo}..{hi}")
        if not self.n_ratio > 1.0:
            raise RexbenchError(
                f"N / d_out must exceed 1 (the paper: N > d_out), got {self.n_ratio}"
            )
        if self.spatial < 1:
            raise RexbenchError(f"spatial must be at least 1, got {self.spatial}")

    @property
    def parsed_measure(self) -> Measure:
        return parse_measure(self.measure)

    @property
    def eps(self) -> float:
        return EPS[self.dtype]

    def rows(self, d_out: int) -> int:
        """N, the rows of each feature matrix: ceil(n_ratio x d_out)."""
        return math.ceil(self.n_ratio * d_out - 1e-9)

    def images(self, d_out: int) -> int:
        """Input images per network: N / (H x W) rounded up for `positions`, N otherwise."""
        n = self.rows(d_out)
        return math.ceil(n / self.spatial**2) if self.matrix == "positions" else n

    def changes(self, base: Reading | None = None) -> dict[str, Any]:
        """The fields that differ from `base` (default: the plain `Reading()`)."""
        ref = base or Reading()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(ref, f.name)
        }

    def label(self, base: Reading | None = None) -> str:
        """'key=value' for each field that differs from `base`; 'base' if none does."""
        parts = []
        for key, value in self.changes(base).items():
            shown = f"{value[0]}..{value[1]}" if key == "d_out_range" else f"{value}"
            parts.append(f"{key}={shown}")
        return " ".join(parts) or "base"

    def describe(self) -> str:
        """One line for the study's footer."""
        lo, hi = self.d_out_range
        grid = f"{self.spatial}x{self.spatial} {self.inputs} inputs"
        bn = "no BN" if self.bn == "none" else f"BN {self.bn}-activation ({self.bn_mode} mode)"
        bn += f", {self.init} init"
        centred = ", centred" if self.centre else ""
        return (
            f"{self.parsed_measure.name} ({self.parsed_measure.describe()}) of the {self.matrix} "
            f"matrix{centred}; N = {self.n_ratio:g} x d_out, d_out {lo}..{hi}, {grid}, {bn}, "
            f"{self.dtype}"
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["d_out_range"] = list(self.d_out_range)
        return data

    def with_(self, **changes: Any) -> Reading:
        return replace(self, **changes)


DEFAULT_READING = Reading()


def torch_dtype(reading: Reading) -> torch.dtype:
    import torch

    return torch.float64 if reading.dtype == "fp64" else torch.float32


def make_input(reading: Reading, shape: tuple[int, int, int, int], gen: torch.Generator):
    """A seeded input batch (images, d_in, H, W) drawn as `reading.inputs` says, in its dtype."""
    import torch
    import torch.nn.functional as F

    batch, d_in, h, w = shape
    kind = reading.inputs
    if kind == "uniform":
        x = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * math.sqrt(3.0)
    elif kind == "lowrank":
        latent = math.ceil(d_in / 2)
        z = torch.randn((batch, latent, h, w), generator=gen, dtype=torch.float64)
        mix = torch.randn((d_in, latent), generator=gen, dtype=torch.float64) / math.sqrt(latent)
        x = torch.einsum("ck,bkhw->bchw", mix, z)
    else:
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
        if kind == "relu":
            x = torch.relu(x)
        elif kind == "smooth" and h > 1:
            for _ in range(2):
                x = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
            x = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / x.std(dim=(0, 2, 3), keepdim=True)
    return x.to(torch_dtype(reading))


def normalize(x: torch.Tensor, reading: Reading) -> torch.Tensor:
    """BatchNorm with gamma 1, beta 0: batch statistics (train) or the initial running ones (eval)."""
    import torch
    import torch.nn.functional as F

    if reading.bn_mode == "train":
        return F.batch_norm(x, None, None, training=True)
    channels = x.shape[1]
    mean = torch.zeros(channels, dtype=x.dtype, device=x.device)
    var = torch.ones(channels, dtype=x.dtype, device=x.device)
    return F.batch_norm(x, mean, var, training=False)


def feature_matrices(
    outputs: torch.Tensor, reading: Reading, rows: int | None = None
) -> torch.Tensor:
    """(A, B, C, H, W) block outputs -> (A, M, N, C) feature matrices as `reading.matrix` says.

    positions: M = 1, the first `rows` (None: all) of the B x H x W positions; pooled: M = 1, the
    B = N images after global average pooling; per-position: M = H matrices of the B = N images, one
    per position (k, k) on the diagonal. Centred per column when `reading.centre`.
    """
    acts, batch, channels, h, w = outputs.shape
    if reading.matrix == "positions":
        flat = outputs.permute(0, 1, 3, 4, 2).reshape(acts, 1, batch * h * w, channels)
        mats = flat[:, :, :rows]
    elif reading.matrix == "pooled":
        mats = outputs.mean(dim=(3, 4)).unsqueeze(1)
    else:  # the H positions on the diagonal: corners and interior alike, at 1/H of the cost
        mats = outputs.diagonal(dim1=3, dim2=4).permute(0, 3, 1, 2)  # (A, B, C, H) -> (A, H, B, C)
    if reading.centre:
        mats = mats - mats.mean(dim=-2, keepdim=True)
    return mats
