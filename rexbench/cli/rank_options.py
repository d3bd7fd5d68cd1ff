"""Options of `rexbench rank study` that choose the reading of section 3.2 (see rank/readings.py).

Each option's default is the default reading's value, so `rexbench rank study` with none of them
runs the reading the search in benchmarks/rank_readings.py chose (docs/rank-study.md).
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer

from rexbench.rank.readings import DEFAULT_READING, Reading

MeasureOpt = Annotated[
    str,
    typer.Option(
        "--rank-measure",
        help="rank (tolerance max(rows, cols) x eps), rank@RTOL (e.g. rank@1e-3: tolerance RTOL x "
        "largest singular value), erank (effective rank), srank (stable rank), nuclear "
        "(nuclear / spectral norm).",
    ),
]
MatrixOpt = Annotated[
    str,
    typer.Option(
        "--matrix",
        help="positions (rows: batch x H x W), pooled (rows: images after global average "
        "pooling) or per-position (one matrix per diagonal position, averaged).",
    ),
]
InputsOpt = Annotated[
    str, typer.Option("--inputs", help="Input X: gaussian, uniform, relu, smooth or lowrank.")
]
NRatioOpt = Annotated[
    float, typer.Option("--n-ratio", help="N / d_out: rows of the feature matrix per channel.")
]
BnOpt = Annotated[
    str, typer.Option("--bn", help="pre (conv -> BN -> f), post (conv -> f -> BN) or none.")
]
BnModeOpt = Annotated[
    str,
    typer.Option("--bn-mode", help="train (batch statistics) or eval (initial running stats)."),
]
InitOpt = Annotated[
    str,
    typer.Option(
        "--init", help="Conv weights: he N(0, 1/fan_in), torch (PyTorch default) or normal N(0, 1)."
    ),
]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="fp32 or fp64 (forward pass and SVD).")]
CentreOpt = Annotated[
    bool,
    typer.Option("--centre/--no-centre", help="Subtract each column's mean before measuring."),
]

D = DEFAULT_READING


def reading_from(options: dict[str, Any]) -> Reading:
    """The Reading named by a command's options (its `locals()`): the keyword arguments of `reading`
    taken from `options`, the rest ignored."""
    names = inspect.signature(reading).parameters
    return reading(**{k: v for k, v in options.items() if k in names})


def reading(
    *,
    rank_measure: str = D.measure,
    matrix: str = D.matrix,
    inputs: str = D.inputs,
    n_ratio: float = D.n_ratio,
    bn: str = D.bn,
    bn_mode: str = D.bn_mode,
    init: str = D.init,
    dtype: str = D.dtype,
    centre: bool = D.centre,
    d_out: tuple[int, int] = D.d_out_range,
    spatial: int = D.spatial,
) -> Reading:
    """The Reading the options name; names are folded to lower case, '_' read as '-'."""

    def fold(text: str) -> str:
        return text.strip().lower().replace("_", "-")

    return Reading(
        measure=rank_measure.strip(),
        matrix=fold(matrix),
        inputs=fold(inputs),
        n_ratio=n_ratio,
        bn=fold(bn),
        bn_mode=fold(bn_mode),
        init=fold(init),
        dtype=fold(dtype),
        centre=centre,
        d_out_range=(int(d_out[0]), int(d_out[1])),
        spatial=spatial,
    )
