"""The paper's Figure 3 from measured records: ImageNet top-1 against FLOPs, CPU latency and GPU latency.

Top-1 is the paper's published accuracy (rexbench.paper.tables; nothing here measures it), or for
timm:, torchvision: and py: models the one given with `--top1 SPEC=PCT`; FLOPs and parameters are
the exact counts of the records (`macs_conv`); latency is the median per batch with its 95% CI.
Drawn on `rexbench.figures.new_figure` (Agg canvas, no pyplot state): headless, backend untouched.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.figures import check_figure_path, min_spans, new_figure, shared_legend
from rexbench.records.derived import family, short_label
from rexbench.records.derived import top1 as published_top1
from rexbench.records.schema import Record

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DEFAULT_FAMILIES = ("ReXNet", "EfficientNet")  # the two lines of the paper's Figure 3
COUNT_AXES = ("flops", "params")
DEVICE_AXES = ("latency", "throughput")
DEVICES = ("cpu", "cuda")
_DEVICE_NAME = {"cpu": "CPU", "cuda": "GPU"}
_COLORS = {
    "ReXNet": "tab:red",
    "EfficientNet": "tab:blue",
    "ReXNet-lite": "tab:orange",
    "EfficientNet-lite": "tab:cyan",
    "ReXNet (plain)": "tab:purple",
    "MobileNetV1": "tab:gray",
    "MobileNetV2": "tab:green",
    "MobileNetV3": "tab:olive",
}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_LINESTYLES = ("-", "--", "-.", (0, (5, 1, 1, 1, 1, 1)))
Top1 = Callable[[str], "float | None"]  # canonical spec -> top-1 %, or None (not plotted)


def _order(series: list[Series]) -> list[Series]:
    """The paper's families first (ReXNet, EfficientNet, ...), then the rest by name."""
    rank = {name: i for i, name in enumerate(_COLORS)}
    return sorted(series, key=lambda s: (rank.get(s.family, len(rank)), s.name))


@dataclass
class Series:
    """One line of a panel: a family on one machine with one configuration."""

    family: str
    name: str
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    errs: list[tuple[float, float]] = field(default_factory=list)  # (below, above) the x value
    linestyle: Any = "-"  # one per machine


def parse_axes(x: str | Sequence[str] | None) -> tuple[str, str]:
    """`--x` values -> (count axis, device axis): "params", "throughput", "params,throughput"."""
    items = [x] if isinstance(x, str) else list(x or [])
    names = [v.strip().lower() for raw in items for v in raw.split(",") if v.strip()]
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
    from rexbench.spec import parse

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


def _plottable(
    records: Iterable[Record], families: Sequence[str] | None, top1: Top1
) -> tuple[list[Record], dict[str, int]]:
    """Records with a top-1 in the chosen families, and counts of what was left out."""
    keep: list[Record] = []
    hidden = {"family": 0, "top1": 0, "family:cpu": 0, "family:cuda": 0, "invalid": 0}
    wanted = None if families is None else {f.lower() for f in families}
    for r in records:
        spec = r.model.spec
        if not r.valid:  # its output differs from the eager fp32 model's (rexbench.measure.checks.parity)
            hidden["invalid"] += 1
        elif wanted is not None and r.model.family.lower() not in wanted:
            hidden["family"] += 1
            hidden[f"family:{r.device_kind}"] += r.latency is not None
        elif top1(spec) is None:
            hidden["top1"] += 1
        else:
            keep.append(r)
    return keep, hidden


def _count_series(records: list[Record], axis: str, top1: Top1) -> list[Series]:
    series: dict[str, Series] = {}
    seen = set()
    for r in sorted(records, key=lambda r: top1(r.model.spec) or 0.0):
        value = r.macs_conv if axis == "flops" else r.params
        if value is None or r.model.spec in seen:
            continue
        seen.add(r.model.spec)
        fam = r.model.family
        s = series.setdefault(fam, Series(fam, fam))
        s.xs.append(value / (1e9 if axis == "flops" else 1e6))
        s.ys.append(top1(r.model.spec))
        s.labels.append(r.model.short_label)
    return _order(list(series.values()))


def _device_series(records: list[Record], kind: str, axis: str, top1: Top1) -> list[Series]:
    groups: dict[tuple, Series] = {}
    chosen = [r for r in records if r.device_kind == kind and r.latency is not None]
    variants = {(r.machine_id, r.run.label, r.dtype, r.batch_size) for r in chosen}
    machines = list(Record.by_machine(records))
    for r in sorted(chosen, key=lambda r: top1(r.model.spec) or 0.0):
        fam, lat = r.model.family, r.latency
        key = (fam, r.machine_id, r.run.label, r.dtype, r.batch_size)
        name = fam
        if len(variants) > 1:
            name += f" - {r.hardware}, {r.run.label}, {r.dtype}, batch {r.batch_size}"
        style = _LINESTYLES[machines.index(r.machine_id) % len(_LINESTYLES)]
        s = groups.setdefault(key, Series(fam, name, linestyle=style))
        if axis == "latency":
            x, err = lat.median_ms, (lat.median_ms - lat.ci_low_ms, lat.ci_high_ms - lat.median_ms)
        else:  # images/s; the CI of the median latency maps to the reverse throughput interval
            per_ms = lat.batch_size * 1e3
            x = lat.throughput
            err = (x - per_ms / lat.ci_high_ms, per_ms / lat.ci_low_ms - x)
        s.xs.append(x)
        s.ys.append(top1(r.model.spec))
        s.labels.append(r.model.short_label)
        s.errs.append(err)
    return _order(list(groups.values()))


def _paper_series(specs: Iterable[str], panel: str) -> list[Series]:
    """The paper's own points (headline rows of rexbench.paper.tables) for the specs plotted."""
    from rexbench.paper.tables import published

    out: dict[str, Series] = {}
    for spec in sorted(set(specs), key=lambda s: published_top1(s) or 0.0):
        row = published(spec)
        metric = {"flops": "flops", "params": "params", "cpu": "cpu", "cuda": "gpu"}
        printed = row.metric(metric[panel.split(":")[0]]) if row is not None else None
        if printed is None or row.top1 is None:
            continue
        x = printed.value  # B, M or ms as printed
        if panel.endswith(":throughput"):
            batch = 1 if panel.startswith("cpu") else 64  # Table 4 / §5.1 batch sizes
            x = batch * 1e3 / printed.value
        fam = family(spec)
        s = out.setdefault(fam, Series(fam, f"{fam} (paper)"))
        s.xs.append(x)
        s.ys.append(row.top1.value)
        s.labels.append(short_label(spec))
    return _order(list(out.values()))


def _draw(ax: Axes, series: list[Series], paper: list[Series], style: dict[str, int]) -> None:
    for s in series:
        color = _COLORS.get(s.family)
        index = style.setdefault(s.name, len(style))
        marker = _MARKERS[index % len(_MARKERS)]
        if s.errs:
            xerr = [[e[0] for e in s.errs], [e[1] for e in s.errs]]
            ax.errorbar(s.xs, s.ys, xerr=xerr, marker=marker, color=color, label=s.name,
                        capsize=3, markersize=5, linewidth=1.4, linestyle=s.linestyle)  # fmt: skip
        else:
            ax.plot(s.xs, s.ys, marker=marker, color=color, label=s.name, markersize=5,
                    linestyle=s.linestyle)  # fmt: skip
        # first family's labels above left, the next's below right: neighbours do not collide
        at, ha = ((-5, 4), "right") if index % 2 == 0 else ((5, -12), "left")
        for x, y, text in zip(s.xs, s.ys, s.labels, strict=True):
            ax.annotate(text, (x, y), textcoords="offset points", xytext=at, ha=ha, fontsize=8.5)
    for s in paper:
        ax.plot(s.xs, s.ys, marker="o", markerfacecolor="none", linestyle=":", linewidth=0.9,
                color=_COLORS.get(s.family, "0.4"), label=s.name, markersize=6)  # fmt: skip


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
        why.append(
            f"{hidden['top1']} without a published top-1 (give one with --top1 SPEC=PCT)"
        )
    return f"nothing to plot: of {count} record(s), " + " and ".join(why)


def caption(
    records: list[Record], hidden: dict[str, int], paper: bool, given: Sequence[str] = ()
) -> str:
    """The caption line(s): machine(s), configuration(s), where top-1 comes from, what was left out."""
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
            lines.append(f"No {name} records: `rexbench sweep table5 --device {kind}` measures them.")
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
    is given (.png, .svg or .pdf); the figure is 12.5 x 5.6 inches at `dpi`.
    """
    count_axis, device_axis = parse_axes(x)
    out = check_figure_path(path) if path is not None else None
    records, _ = Record.latest(records)
    chosen = [r for r in records if configs is None or r.run.label in configs]
    records, others = chosen, len(records) - len(chosen)
    given = dict(top1 or {})

    def accuracy(spec: str) -> float | None:
        return given[spec] if spec in given else published_top1(spec)

    shown, hidden = _plottable(records, families, accuracy)
    hidden["config"] = others
    if not shown:
        raise NothingToPlot(_nothing(len(records), hidden, families))
    fig = new_figure(12.5, 5.6)
    axes = fig.subplots(1, 3, sharey=True)
    panels = [count_axis] + [f"{kind}:{device_axis}" for kind in DEVICES]
    style: dict[str, int] = {}
    for ax, panel in zip(axes, panels, strict=True):
        _panel(ax, panel, shown, hidden, (accuracy, paper, style))
    shared_legend(fig, axes, "ReXNet vs EfficientNet: accuracy against FLOPs and measured latency (cf. paper Figure 3)")
    min_spans(axes, y=2.0)  # two models 0.1 points apart are not drawn edge to edge
    used = sorted({r.model.spec for r in shown} & set(given))
    axes[0].set_ylabel("ImageNet top-1 (%, published" + (" or given)" if used else ")"), fontsize=10)
    fig.supxlabel(caption(shown, hidden, paper, used), fontsize=8.5, x=0.01, ha="left")
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(out, dpi=dpi)
        except OSError as exc:
            raise RexbenchError(f"cannot write {out}: {exc.strerror or exc}") from None
    return fig


def _panel(ax: Axes, panel: str, shown: list[Record], hidden: dict[str, int], how: tuple) -> None:
    """One panel: its measured lines, the paper's (when asked), title, label, and what is missing:
    inside an otherwise empty panel, else under the title (never over the paper's points)."""
    accuracy, paper, style = how
    if panel in COUNT_AXES:
        series = _count_series(shown, panel, accuracy)
        title = f"Top-1 vs {'FLOPs' if panel == 'flops' else 'parameters'}"
        empty, other = "no records with counts", hidden["family"]
    else:
        kind, axis = panel.split(":")
        series = _device_series(shown, kind, axis, accuracy)
        title = f"Top-1 vs {_DEVICE_NAME[kind]} {axis}"
        empty = f"no {'CUDA' if kind == 'cuda' else 'CPU'} records - run `rexbench sweep table5 --device {kind}`"
        other = hidden[f"family:{kind}"]
    theirs = _paper_series({r.model.spec for r in shown}, panel) if paper else []
    _draw(ax, series, theirs, style)
    if not series and other:
        empty += f"\n({other} record(s) of other families hidden: --all-families)"
    if not series and not theirs:  # an empty panel: the note in its middle, no scale
        ax.text(0.5, 0.5, empty.replace(" - ", " -\n", 1), transform=ax.transAxes, ha="center",
                va="center", fontsize=9, color="0.35")  # fmt: skip
        ax.set_xticks([])
    elif not series:  # the paper's points are drawn: the hint goes to the caption
        title += f" ({empty.split(' - ')[0]})"
    ax.set_title(title, fontsize=10.5)
    ax.set_xlabel(_xlabel(panel, shown), fontsize=9)
    ax.tick_params(labelsize=9)
    ax.margins(x=0.12, y=0.06)  # room for the point labels at both ends
    ax.grid(alpha=0.3)


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
            }  # fmt: skip
            for ax in fig.axes
        ]
    }
