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

# one marker, line style and colour per nonlinearity, the same in every panel
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
SHORT_BLOCKS = {
    "conv1x1": "1x1 conv",
    "conv3x3": "3x3 conv",
    "ib_conv3x3": "IB, 3x3",
    "ib_dw3x3": "IB, dw 3x3",
}


def plot_study(result: StudyResult, path: str | Path | None = None) -> Figure:
    """Figure 1 as small multiples: a row per block, a panel per nonlinearity, so that curves that
    coincide (most sit at full rank) never hide each other. Each panel: the mean rank ratio, its
    10-90% band over networks, the linear block ("none") and the input's own measure (d_in/d_out
    for the exact rank)."""
    from rexbench.rank.study import ACTIVATIONS, BLOCKS

    out = check_figure_path(path, create_parent=True) if path is not None else None
    summary = result.summary()
    ratios = list(result.config.ratios)
    blocks = list(summary)
    acts = [a for a in summary[blocks[0]] if a != "none"] or ["none"]
    reference = result.reference() or ratios
    fig = new_figure(1.7 * len(acts) + 0.7, 1.5 * len(blocks) + 1.0)
    axes = fig.subplots(len(blocks), len(acts), sharex=True, sharey=True, squeeze=False)
    for r, block in enumerate(blocks):
        for c, act in enumerate(acts):
            ax, stats = axes[r][c], summary[block][act]
            ax.plot(ratios, reference, color="0.6", linewidth=1.4, alpha=0.7, label="input X")
            if act != "none" and "none" in summary[block]:
                ax.plot(
                    ratios,
                    summary[block]["none"]["mean"],
                    color="0.3",
                    linestyle=":",
                    marker="x",
                    markersize=3,
                    linewidth=0.9,
                    label="none (linear)",
                )
            marker, style = MARKERS.get(act, (".", "-"))
            colour = f"C{list(ACTIVATIONS).index(act) % 10}"
            ax.plot(
                ratios,
                stats["mean"],
                color=colour,
                marker=marker,
                linestyle=style,
                markersize=3.5,
                linewidth=1.1,
                label=ACTIVATIONS[act],
            )
            ax.fill_between(ratios, stats["q10"], stats["q90"], color=colour, alpha=0.15)
            ax.set_xlim(0, 1.05)
            ax.set_ylim(0, 1.05)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(ACTIVATIONS[act], fontsize=9)
            if c == 0:
                letter = BLOCKS[block][0]
                ax.set_ylabel(
                    f"({letter}) {SHORT_BLOCKS.get(block, block)}\nrank ratio", fontsize=8
                )
            if r == len(blocks) - 1:
                ax.set_xlabel("d_in/d_out", fontsize=8)
    axes[0][-1].legend(fontsize=6, loc="lower right")
    reading, cfg = result.config.reading, result.config
    fig.suptitle(
        f"{reading.parsed_measure.name}(f(WX)) / d_out, mean over {cfg.networks} random networks per "
        f"point (seed {cfg.seed}; bands: 10-90% of networks; grey: the input X, dotted: no "
        f"nonlinearity)\n{reading.describe()}",
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
    left.legend(fontsize=7, loc="lower right")
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
