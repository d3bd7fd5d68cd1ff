"""Figure helpers shared by Figure 3 (rexbench.report.figure3) and the rank study's Figures 1 and 5
(rexbench.rank.plots).

matplotlib is imported inside the functions and used through `matplotlib.figure.Figure` with the Agg
canvas (no pyplot state), so figures work headless and never change the caller's backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = (".png", ".svg", ".pdf")


def check_figure_path(path: str | Path, *, create_parent: bool = False) -> Path:
    """The output path if its suffix is a supported format; RexbenchError naming --out otherwise.
    create_parent=True also creates its parent folders."""
    out = Path(path)
    if out.suffix.lower() not in FORMATS:
        raise RexbenchError(f"--out {out}: use a file name ending in {', '.join(FORMATS)}")
    if create_parent:
        out.parent.mkdir(parents=True, exist_ok=True)
    return out


def new_figure(width: float, height: float) -> Figure:
    """An empty constrained-layout figure of width x height inches on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig
