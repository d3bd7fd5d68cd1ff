"""Figures of the rank study: Figure 1 (rank ratio vs dimension ratio) and Figure 5 right (feature CDF).

matplotlib is imported inside the functions and drawn on `rexbench.figures.new_figure` (Agg canvas,
no pyplot state), so it works headless and never changes the caller's backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rexbench.figures import check_figure_path, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rexbench.rank.features import FeatureSpectrum
    from rexbench.rank.study import StudyResult


# one marker and line style per nonlinearity, so that curves that coincide stay distinguishable
MARKERS = {
    "relu": ("o", "-"),
    "relu6": ("s", "--"),
    "leaky_relu": ("^", "-."),
    "elu": ("D", "-"),
    "softplus": ("v", "--"),
    "hardswish": ("P", "-."),
    "silu": ("*", "-"),
    "none": ("x", ":"),
}
DODGE = 0.004  # horizontal offset between neighbouring curves' markers, in units of d_in/d_out


def plot_study(result: StudyResult, path: str | Path | None = None) -> Figure:
    """One panel per block: mean rank ratio per nonlinearity (own marker and line style, markers
    offset by up to +-3.5 x DODGE so that equal values stay visible), 10-90% band, and the input's
    own measure (d_in/d_out for the exact rank)."""
    from rexbench.rank.study import ACTIVATIONS, BLOCKS

    out = check_figure_path(path, create_parent=True) if path is not None else None
    summary = result.summary()
    ratios = list(result.config.ratios)
    blocks = list(summary)
    reference = result.reference() or ratios
    fig = new_figure(3.2 * len(blocks), 3.7)
    axes = fig.subplots(1, len(blocks), sharey=True, squeeze=False)[0]
    for ax, block in zip(axes, blocks, strict=True):
        acts = list(summary[block])
        for k, (act, stats) in enumerate(summary[block].items()):
            shift = (k - (len(acts) - 1) / 2) * DODGE
            marker, style = MARKERS.get(act, (".", "-"))
            (line,) = ax.plot(
                [x + shift for x in ratios],
                stats["mean"],
                marker=marker,
                linestyle=style,
                markersize=4,
                linewidth=1,
                label="none (linear)" if act == "none" else ACTIVATIONS[act],
                **({"color": "0.35"} if act == "none" else {}),
            )
            ax.fill_between(ratios, stats["q10"], stats["q90"], color=line.get_color(), alpha=0.08)
        ax.plot(ratios, reference, color="0.5", linewidth=1.6, alpha=0.6, label="input X")
        ax.set_title(BLOCKS[block][1], fontsize=9)
        ax.set_xlabel("dimension ratio d_in/d_out")
        ax.set_xlim(0, 1.04)
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    reading = result.config.reading
    axes[0].set_ylabel(f"rank ratio: {reading.parsed_measure.name} / d_out")
    axes[-1].legend(fontsize=6.5, loc="lower right")
    cfg = result.config
    fig.suptitle(
        f"{reading.parsed_measure.name}(f(WX)) / d_out, mean over {cfg.networks} random networks per "
        f"point (seed {cfg.seed}; bands: 10-90% of networks; markers offset by up to "
        f"+-{3.5 * DODGE:g} so that equal curves stay visible)\n{reading.describe()}",
        fontsize=8,
    )
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig


def cdf_points(normalized: Sequence[float]) -> tuple[list[float], list[float]]:
    """Empirical CDF of values in [0, 1]: sorted values and the fraction <= each."""
    xs = sorted(normalized)
    n = len(xs)
    return xs, [(k + 1) / n for k in range(n)]


def spectrum_label(spec: FeatureSpectrum) -> str:
    """Legend label: model, images, and whether its weights are random (no checkpoint)."""
    source = "random init" if spec.random_weights else "checkpoint"
    return f"{spec.model} (n={spec.images}, {source})"


def plot_spectra(
    spectra: Sequence[FeatureSpectrum] | Mapping[str, FeatureSpectrum],
    path: str | Path | None = None,
) -> Figure:
    """Singular values normalised by the largest, one line per model (Figure 5, right).

    Left: their cumulative distribution (the paper's plot) on a log x axis, since after a random
    initialisation one singular value dominates and the rest sit far below 0.1. Right: each value
    against its normalised index k/n, log y. The title says when weights are random.
    """
    items = list(spectra.values()) if isinstance(spectra, Mapping) else list(spectra)
    out = check_figure_path(path, create_parent=True) if path is not None else None
    fig = new_figure(8.4, 3.7)
    left, right = fig.subplots(1, 2)
    smallest = min([1.0, *(x for spec in items for x in spec.normalized() if x > 0)])
    for spec in items:
        xs, ys = cdf_points(spec.normalized())
        (line,) = left.step(
            [smallest / 2, *xs], [0.0, *ys], where="post", label=spectrum_label(spec)
        )
        index = [(k + 1) / len(xs) for k in range(len(xs))]
        right.plot(index, spec.normalized(), color=line.get_color(), label=spectrum_label(spec))
    left.set_xscale("log")
    left.set_xlim(max(smallest / 2, 1e-12), 1.05)
    left.set_xlabel("normalised singular value (log scale)")
    left.set_ylabel("cumulative fraction")
    left.set_ylim(0, 1.02)
    right.set_yscale("log")
    right.set_xlabel("normalised index k / n")
    right.set_ylabel("singular value / largest (log scale)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=7, loc="upper left")
    title = "Penultimate-feature singular values (cf. paper Figure 5, right)"
    random = [s.model for s in items if s.random_weights]
    if random:
        title += (
            f"\nRANDOM WEIGHTS (no checkpoint) for {', '.join(random)}: the architecture at "
            "initialisation, not a trained model"
        )
    fig.suptitle(title, fontsize=9)
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig
