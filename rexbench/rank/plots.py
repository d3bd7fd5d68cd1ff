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


def plot_study(result: StudyResult, path: str | Path | None = None) -> Figure:
    """One panel per block: mean rank ratio per nonlinearity, 10-90% band, and y = d_in/d_out."""
    from rexbench.rank.study import ACTIVATIONS, BLOCKS

    out = check_figure_path(path, create_parent=True) if path is not None else None
    summary = result.summary()
    ratios = list(result.config.ratios)
    blocks = list(summary)
    fig = new_figure(3.2 * len(blocks), 3.4)
    axes = fig.subplots(1, len(blocks), sharey=True, squeeze=False)[0]
    for ax, block in zip(axes, blocks, strict=True):
        for act, stats in summary[block].items():
            style = {"color": "0.35", "linestyle": "--"} if act == "none" else {}
            (line,) = ax.plot(
                ratios,
                stats["mean"],
                marker=".",
                label="none (linear)" if act == "none" else ACTIVATIONS[act],
                **style,
            )
            ax.fill_between(ratios, stats["q10"], stats["q90"], color=line.get_color(), alpha=0.12)
        ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":", label="d_in/d_out")
        ax.set_title(BLOCKS[block][1], fontsize=9)
        ax.set_xlabel("dimension ratio d_in/d_out")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("rank ratio rank/d_out")
    axes[-1].legend(fontsize=7, loc="lower right")
    cfg = result.config
    fig.suptitle(
        f"Rank of f(WX) over {cfg.networks} random networks per point "
        f"(d_out {cfg.d_out_range[0]}..{cfg.d_out_range[1]}, seed {cfg.seed}; bands: 10-90%)",
        fontsize=9,
    )
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig


def cdf_points(normalized: Sequence[float]) -> tuple[list[float], list[float]]:
    """Empirical CDF of values in [0, 1]: sorted values and the fraction <= each."""
    xs = sorted(normalized)
    n = len(xs)
    return xs, [(k + 1) / n for k in range(n)]


def plot_spectra(
    spectra: Sequence[FeatureSpectrum] | Mapping[str, FeatureSpectrum],
    path: str | Path | None = None,
) -> Figure:
    """Cumulative distribution of singular values normalised to [0, 1], one line per model (Figure 5)."""
    items = list(spectra.values()) if isinstance(spectra, Mapping) else list(spectra)
    out = check_figure_path(path, create_parent=True) if path is not None else None
    fig = new_figure(4.6, 3.6)
    ax = fig.subplots()
    for spec in items:
        xs, ys = cdf_points(spec.normalized())
        ax.step([0.0, *xs], [0.0, *ys], where="post", label=f"{spec.model} (n={spec.images})")
    ax.set_xlabel("normalised singular value")
    ax.set_ylabel("cumulative fraction")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Penultimate-feature singular values (cf. paper Figure 5, right)", fontsize=9)
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig
