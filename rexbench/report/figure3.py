"""The paper's Figure 3 from measured records: ImageNet top-1 against FLOPs, CPU latency and GPU latency.

Top-1 is the paper's published accuracy (rexbench.paper.tables; nothing here measures it), or for
timm:, torchvision: and py: models the one given with `--top1 SPEC=PCT`; FLOPs and parameters are
the exact counts of the records (`macs_conv`); latency is the median per batch with its 95% CI.
Drawn on `rexbench.figures.new_figure` (Agg canvas, no pyplot state): headless, backend untouched.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.figures import check_figure_path, min_spans, new_figure, shared_legend
from rexbench.records.derived import top1 as published_top1
from rexbench.records.schema import Record
from rexbench.report.figure3_series import (
    COLORS,
    MARKERS,
    Series,
    Top1,
    count_series,
    device_series,
    paper_series,
    plottable,
)
from rexbench.report.latest import latest, older_note, point
from rexbench.report.point_labels import Label, place_labels
from rexbench.spec import parse, split_values

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

DEFAULT_FAMILIES = ("ReXNet", "EfficientNet")  # the two lines of the paper's Figure 3
COUNT_AXES = ("flops", "params")
DEVICE_AXES = ("latency", "throughput")
DEVICES = ("cpu", "cuda")
_DEVICE_NAME = {"cpu": "CPU", "cuda": "GPU"}
_ROOM = (1.1, 0.8)  # inches of the 5.6-inch figure for the legend and for the caption


def parse_axes(x: str | Sequence[str] | None) -> tuple[str, str]:
    """`--x` values -> (count axis, device axis): "params", "throughput", "params,throughput"."""
    items = [x] if isinstance(x, str) else list(x or [])
    names = [v.lower() for v in split_values(items)]
    count, dev = "flops", "latency"
    for name in names:
        if name in COUNT_AXES:
            count = name
        elif name in DEVICE_AXES:
            dev = name
        else:
            known = ", ".join(COUNT_AXES + DEVICE_AXES)
            raise RexbenchError(f"--x {name!r}: choose from {known} (e.g. --x params,throughput)")
    return count, dev


def parse_top1(items: Iterable[str] | None) -> dict[str, float]:
    """`--top1 SPEC=PCT` values -> {canonical spec: top-1 %}: the accuracy of a model the paper has
    no number for (timm:, torchvision:, py: specs), e.g. "py:nets.py:build?width=2=71.5"."""
    out: dict[str, float] = {}
    for item in items or []:
        spec, eq, value = item.rpartition("=")
        try:
            pct = float(value)
        except ValueError:
            pct = -1.0
        if not eq or not spec.strip() or not 0 < pct <= 100:
            raise RexbenchError(
                f"--top1 {item!r}: expected SPEC=PCT with 0 < PCT <= 100, e.g. --top1 torchvision:resnet50=76.13"
            )
        out[str(parse(spec))] = pct
    return out


def _draw(ax: Axes, series: list[Series], paper: list[Series], style: dict[str, int]) -> None:
    """The measured lines (with their CIs as error bars), then the paper's as hollow markers."""
    for s in series:
        color = COLORS.get(s.family)
        index = style.setdefault(s.name, len(style))
        marker = MARKERS[index % len(MARKERS)]
        if s.errs:
            xerr = [[e[0] for e in s.errs], [e[1] for e in s.errs]]
            ax.errorbar(
                s.xs,
                s.ys,
                xerr=xerr,
                marker=marker,
                color=color,
                label=s.name,
                capsize=3,
                markersize=5,
                linewidth=1.4,
                linestyle=s.linestyle,
            )
        else:
            ax.plot(
                s.xs,
                s.ys,
                marker=marker,
                color=color,
                label=s.name,
                markersize=5,
                linestyle=s.linestyle,
            )
    for s in paper:
        ax.plot(
            s.xs,
            s.ys,
            marker="o",
            markerfacecolor="none",
            linestyle=":",
            linewidth=0.9,
            color=COLORS.get(s.family, "0.4"),
            label=s.name,
            markersize=6,
        )


def _labels(series: list[Series]) -> list[Label]:
    """One label per model and panel, at its leftmost point: the points of one model share its
    top-1, so they lie on one level. The first family's labels go above left, the next's below
    right (where free), so that two neighbouring lines do not label into each other."""
    first: dict[tuple[str, str, float], Label] = {}
    families = list(dict.fromkeys(s.family for s in series))
    for s in series:
        below = families.index(s.family) % 2 == 1
        for x, y, text in zip(s.xs, s.ys, s.labels, strict=True):
            key = (s.family, text, y)
            if key not in first or x < first[key].x:
                first[key] = Label(x, y, text, below)
    return sorted(first.values(), key=lambda label: (-label.y, label.x))


def _batches(records: list[Record], kind: str) -> str:
    sizes = sorted({r.batch_size for r in records if r.device_kind == kind})
    if not sizes:
        sizes = [1 if kind == "cpu" else 64]
    return "batch " + "/".join(map(str, sizes))


def _xlabel(panel: str, records: list[Record]) -> str:
    if panel == "flops":
        return "FLOPs (B multiply-adds of conv + linear layers, macs_conv)"
    if panel == "params":
        return "parameters (M)"
    kind, axis = panel.split(":")
    if axis == "latency":
        return f"{_DEVICE_NAME[kind]} latency (ms per batch, {_batches(records, kind)}; median, 95% CI)"
    return f"{_DEVICE_NAME[kind]} throughput (images/s, {_batches(records, kind)})"


class NothingToPlot(RexbenchError):
    """No record can be drawn (other families, no top-1): a figure would be empty."""


def _nothing(count: int, hidden: dict[str, int], families: Sequence[str] | None) -> str:
    """Why nothing can be drawn, and what would draw it."""
    why = []
    if not count:
        return "nothing to plot: no records"
    if hidden["family"]:
        shown = ", ".join(families or ())
        why.append(f"{hidden['family']} of other families than {shown} (--all-families draws them)")
    if hidden["top1"]:
        why.append(f"{hidden['top1']} without a published top-1 (give one with --top1 SPEC=PCT)")
    return f"nothing to plot: of {count} record(s), " + " and ".join(why)


def caption(
    records: list[Record],
    hidden: dict[str, int],
    paper: bool,
    given: Sequence[str] = (),
    older: Sequence[Record] = (),
) -> str:
    """The caption line(s): machine(s), configuration(s), where top-1 comes from, what was left out
    (older records of a point drawn with a newer one named, `rexbench.report.latest`)."""
    lines = []
    for machine, group in Record.by_machine(records).items():
        configs = sorted({f"{r.run.label} {r.dtype} on {r.device}" for r in group})
        lines.append(
            f"Measured on {group[0].machine_label} [{machine}]; config {', '.join(configs)}."
        )
    if not lines:
        lines.append("No measured records to plot.")
    lines.append(
        "Top-1: the paper's published ImageNet accuracy (Tables 5, A1, A2, 4), not measured here; "
        "FLOPs and params: exact counts of the built models; latency: measured median per batch."
    )
    if given:
        lines.append(f"Top-1 given with --top1 (not the paper's): {', '.join(given)}.")
    if paper:
        lines.append(
            "Hollow markers: the paper's own numbers (CPU: Intel Xeon E5-2630, batch 1; "
            "GPU: NVIDIA V100, batch 64; FP32)."
        )
    for kind in DEVICES if paper else ():
        if not any(r.device_kind == kind and r.latency is not None for r in records):
            name = {"cpu": "CPU", "cuda": "CUDA"}[kind]
            lines.append(
                f"No {name} records: `rexbench sweep table5 --device {kind}` measures them."
            )
    if hidden["family"]:
        lines.append(f"{hidden['family']} record(s) of other families not shown (--all-families).")
    if hidden["invalid"]:
        lines.append(
            f"{hidden['invalid']} record(s) of configurations whose output differs from eager fp32 not shown."
        )
    if hidden.get("config"):
        lines.append(f"{hidden['config']} record(s) of other configurations not shown (--config).")
    if hidden["top1"]:
        lines.append(
            f"{hidden['top1']} record(s) without a published top-1 not shown (give one with --top1 SPEC=PCT)."
        )
    if older:
        lines.append(older_note(older))
    return "\n".join(textwrap.fill(line, 185) for line in lines)


def figure3(
    records: Iterable[Record],
    path: str | Path | None = None,
    *,
    x: str | Sequence[str] | None = None,
    families: Sequence[str] | None = DEFAULT_FAMILIES,
    paper: bool = False,
    dpi: int = 100,
    top1: Mapping[str, float] | None = None,
    configs: Sequence[str] | None = None,
) -> Figure:
    """Three panels: top-1 vs FLOPs (or params), vs CPU latency (or throughput), vs GPU latency.

    configs: the configuration labels to draw ("ort" for ONNX Runtime alone, or several to overlay
    them, one line per family and configuration); None draws every configuration measured.

    families None plots every family; records without a published top-1 are left out (counted in
    the caption) unless `top1` gives theirs ({canonical spec: %}, see `parse_top1`; it is named
    in the caption). A device panel without records says so inside the panel. Saved when `path`
    is given (.png, .svg or .pdf); the figure is 12.5 x 5.6 inches at `dpi`, taller where a long
    legend or caption needs the room.
    """
    count_axis, device_axis = parse_axes(x)
    out = check_figure_path(path) if path is not None else None
    records, older = latest(records)
    chosen = [r for r in records if configs is None or r.run.label in configs]
    records, others = chosen, len(records) - len(chosen)
    given = dict(top1 or {})

    def accuracy(spec: str) -> float | None:
        return given[spec] if spec in given else published_top1(spec)

    shown, hidden = plottable(records, families, accuracy)
    hidden["config"] = others
    if not shown:
        raise NothingToPlot(_nothing(len(records), hidden, families))
    fig = new_figure(12.5, 5.6)
    axes = fig.subplots(1, 3, sharey=True)
    panels = [count_axis] + [f"{kind}:{device_axis}" for kind in DEVICES]
    style: dict[str, int] = {}
    labels: list[list[Label]] = []
    for ax, panel in zip(axes, panels, strict=True):
        labels.append(_panel(ax, panel, shown, hidden, accuracy=accuracy, paper=paper, style=style))
    shared_legend(
        fig,
        axes,
        "ReXNet vs EfficientNet: accuracy against FLOPs and measured latency (cf. paper Figure 3)",
    )
    min_spans(axes, y=2.0)  # two models 0.1 points apart are not drawn edge to edge
    used = sorted({r.model.spec for r in shown} & set(given))
    axes[0].set_ylabel(
        "ImageNet top-1 (%, published" + (" or given)" if used else ")"), fontsize=10
    )
    drawn = {point(r) for r in shown}
    replaced = [r for r in older if point(r) in drawn]
    text = caption(shown, hidden, paper, used, older=replaced)
    _grow(fig, fig.supxlabel(text, fontsize=8.5, x=0.01, ha="left"))
    fig.draw_without_rendering()  # the layout, then the point labels where they are free
    for ax, panel_labels in zip(axes, labels, strict=True):
        place_labels(ax, panel_labels, fontsize=8.5)
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(out, dpi=dpi)
        except OSError as exc:
            raise RexbenchError(f"cannot write {out}: {exc.strerror or exc}") from None
    return fig


def _grow(fig: Figure, below: Text) -> None:
    """Make the figure taller by what the legend (title and four rows) and the caption (five
    lines) take beyond their usual room, so that the panels keep their height however many lines
    and notes the records give."""
    renderer = fig.canvas.get_renderer()
    above = fig.legends[0].get_window_extent(renderer).height if fig.legends else 0.0
    extra = max(0.0, above / fig.dpi - _ROOM[0])
    extra += max(0.0, below.get_window_extent(renderer).height / fig.dpi - _ROOM[1])
    if extra:
        fig.set_figheight(fig.get_figheight() + extra)


def _panel(
    ax: Axes,
    panel: str,
    shown: list[Record],
    hidden: dict[str, int],
    *,
    accuracy: Top1,
    paper: bool,
    style: dict[str, int],
) -> list[Label]:
    """One panel: its measured lines, the paper's (when asked), title, label, and what is missing:
    inside an otherwise empty panel, else under the title (never over the paper's points)."""
    if panel in COUNT_AXES:
        series = count_series(shown, panel, accuracy)
        title = f"Top-1 vs {'FLOPs' if panel == 'flops' else 'parameters'}"
        empty, other = "no records with counts", hidden["family"]
    else:
        kind, axis = panel.split(":")
        series = device_series(shown, kind, axis, accuracy)
        title = f"Top-1 vs {_DEVICE_NAME[kind]} {axis}"
        empty = f"no {'CUDA' if kind == 'cuda' else 'CPU'} records - run `rexbench sweep table5 --device {kind}`"
        other = hidden[f"family:{kind}"]
    theirs = paper_series({r.model.spec for r in shown}, panel) if paper else []
    _draw(ax, series, theirs, style)
    if not series and other:
        empty += f"\n({other} record(s) of other families hidden: --all-families)"
    if not series and not theirs:  # an empty panel: the note in its middle, no scale
        ax.text(
            0.5,
            0.5,
            empty.replace(" - ", " -\n", 1),
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            color="0.35",
        )
        ax.set_xticks([])
    elif not series:  # the paper's points are drawn: the hint goes to the caption
        title += f" ({empty.split(' - ')[0]})"
    ax.set_title(title, fontsize=10.5)
    ax.set_xlabel(_xlabel(panel, shown), fontsize=9)
    ax.tick_params(labelsize=9)
    ax.margins(x=0.12, y=0.06)  # room for the point labels at both ends
    ax.grid(alpha=0.3)
    return _labels(series)


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = 100) -> bytes:
    """The figure encoded as PNG or SVG (for embedding into HTML). SVG is written without its
    RDF metadata block, which only names matplotlib's and Dublin Core's web pages."""
    buf = io.BytesIO()
    meta = {"Creator": None, "Date": None, "Format": None, "Type": None} if fmt == "svg" else None
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    return buf.getvalue()


def panel_texts(fig: Figure) -> list[list[str]]:
    """The free texts drawn inside each panel (the "no records" notes), for tests and checks."""
    return [[t.get_text() for t in ax.texts if not hasattr(t, "xy")] for ax in fig.axes]


def summary(fig: Figure) -> dict[str, Any]:
    """Title, x label and the legend labels (one per line drawn) of every panel."""
    return {
        "panels": [
            {
                "title": ax.get_title(),
                "xlabel": ax.get_xlabel(),
                "lines": ax.get_legend_handles_labels()[1],
            }
            for ax in fig.axes
        ]
    }
