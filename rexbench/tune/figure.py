"""The figure of a search: every timed candidate's latency (median, with its 95% CI) against its
top-1 agreement with eager fp32 on the evaluation photographs, the Pareto front, the
`--min-agreement` line and the recommendation. Drawn on `rexbench.figures.new_figure` (Agg canvas,
no pyplot state), as the report's figures are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rexbench.figures import new_figure
from rexbench.measure.backends.registry import BACKENDS
from rexbench.tune.pareto import Point
from rexbench.tune.results import Result

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def draw(
    results: Sequence[Result],
    front: Sequence[Point],
    winner: Result | None,
    path: Path,
    *,
    title: str,
    objective: str = "latency",
    min_agreement: float | None = None,
) -> Path:
    """Save the figure to `path` (.png, .svg or .pdf); min_agreement None: no line (random weights)."""
    fig = new_figure(7.5, 4.8)
    ax = fig.add_subplot()
    shown = [r for r in results if r.valid and r.agreement is not None and r.cost(objective)]
    names = BACKENDS.names()
    for i, backend in enumerate(names):
        mine = [r for r in shown if BACKENDS.get(r.candidate.config.runtime).name == backend]
        if not mine:
            continue
        scale = [
            1e3 / (1 if objective == "latency" else r.candidate.config.batch_size) for r in mine
        ]
        x = [r.cost(objective) * 1e3 for r in mine]  # type: ignore[operator]
        low = [xi - (r.ci_low_s or 0) * s for xi, r, s in zip(x, mine, scale, strict=True)]
        high = [(r.ci_high_s or 0) * s - xi for xi, r, s in zip(x, mine, scale, strict=True)]
        ax.errorbar(
            x,
            [r.agreement for r in mine],
            xerr=[[max(v, 0) for v in low], [max(v, 0) for v in high]],
            fmt="o",
            color=_COLORS[i % len(_COLORS)],
            label=BACKENDS.get(None if backend == "torch" else backend).title,
            alpha=0.8,
            capsize=2,
        )
    if front:
        ax.step(
            [p.latency for p in front],
            [p.agreement for p in front],
            where="post",
            color="black",
            linewidth=1,
            label="Pareto front",
        )
    if min_agreement is not None:
        ax.axhline(
            min_agreement, color="grey", linestyle="--", linewidth=1, label="--min-agreement"
        )
    if winner is not None and winner.agreement is not None:
        cost = winner.cost(objective)
        assert cost is not None
        ax.plot(
            [cost * 1e3],
            [winner.agreement],
            marker="*",
            markersize=16,
            color="gold",
            markeredgecolor="black",
            linestyle="none",
            label=f"recommended: {winner.name}",
        )
    unit = "ms per call" if objective == "latency" else "ms per image"
    ax.set_xlabel(f"median latency ({unit}, 95% CI)")
    ax.set_ylabel("top-1 agreement with eager fp32")
    ax.set_title(title, fontsize=10)
    ax.set_ylim(top=1.01)  # agreement is at most 1
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=120)
    return path
