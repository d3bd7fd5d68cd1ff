"""Figure helpers shared by Figure 3 (rexbench.report.figure3) and the rank study's Figures 1 and 5
(rexbench.rank.plots).

matplotlib is imported inside the functions and used through `matplotlib.figure.Figure` with the Agg
canvas (no pyplot state), so figures work headless and never change the caller's backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FORMATS = (".png", ".svg", ".pdf")


def check_figure_path(
    path: str | Path, *, create_parent: bool = False, option: str = "--out"
) -> Path:
    """The output path if its suffix is a supported format and its folder can be one; RexbenchError
    naming `option` otherwise. create_parent=True also creates its parent folders."""
    out = Path(path)
    if out.suffix.lower() not in FORMATS:
        raise RexbenchError(f"{option} {out}: use a file name ending in {', '.join(FORMATS)}")
    if out.is_dir():
        raise RexbenchError(
            f"{option} {out}: that is a folder; give a file name ending in {out.suffix}"
        )
    existing = next((p for p in out.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise RexbenchError(
            f"{option} {out}: {existing} is a file, not a folder; choose another {option} "
            f"(or move {existing} away)"
        )
    if create_parent:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RexbenchError(
                f"{option} {out}: cannot create {out.parent} ({exc.strerror or exc}); choose a writable folder"
            ) from None
    return out


def new_figure(width: float, height: float) -> Figure:
    """An empty constrained-layout figure of width x height inches on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def shared_legend(fig: Figure, axes: Sequence[Axes], title: str, columns: int = 4) -> None:
    """One legend for all panels, above them, under `title` (each label once): it never covers a
    line, and the title needs no suptitle of its own (constrained layout places the two on top of
    each other). At most `columns` columns, fewer where long labels would not fit the width."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if not entries:
        fig.suptitle(title, fontsize=12)
        return
    for ncols in range(min(len(entries), columns), 0, -1):
        legend = fig.legend(
            list(entries.values()),
            list(entries),
            loc="outside upper center",
            title=title,
            title_fontsize=12,
            ncols=ncols,
            fontsize=9,
            frameon=False,
        )
        width = legend.get_window_extent(fig.canvas.get_renderer()).width
        if ncols == 1 or width <= fig.bbox.width:
            return
        legend.remove()


def min_spans(axes: Sequence[Axes], y: float, x_relative: float = 0.3) -> None:
    """No axis zooms into noise: the (shared) y axis spans at least `y`, each x axis with lines at
    least `x_relative` x its largest value, centred on what is drawn (never below 0)."""
    low, high = axes[0].get_ylim()
    if high - low < y:
        mid = (low + high) / 2
        axes[0].set_ylim(mid - y / 2, mid + y / 2)
    for ax in axes:
        left, right = ax.get_xlim()
        need = x_relative * max(abs(left), abs(right))
        if ax.lines and right - left < need:
            start = max((left + right - need) / 2, 0.0)
            ax.set_xlim(start, start + need)
