"""Figure 3's lines: which records a panel draws and how they group into one line per family
and configuration (rexbench.report.figure3 draws them).

x values: exact counts (`macs_conv` in B, parameters in M), or the median latency per batch with its
95% CI (or the throughput it gives); y: the top-1 given by `Top1` (the paper's published accuracy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rexbench.records.derived import family, short_label
from rexbench.records.derived import top1 as published_top1
from rexbench.records.schema import Record
from rexbench.report.latest import allocator, threads, threads_text

COLORS = {
    "ReXNet": "tab:red",
    "EfficientNet": "tab:blue",
    "ReXNet-lite": "tab:orange",
    "EfficientNet-lite": "tab:cyan",
    "ReXNet (plain)": "tab:purple",
    "MobileNetV1": "tab:gray",
    "MobileNetV2": "tab:green",
    "MobileNetV3": "tab:olive",
}
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINESTYLES = ("-", "--", "-.", (0, (5, 1, 1, 1, 1, 1)))
Top1 = Callable[[str], "float | None"]  # canonical spec -> top-1 %, or None (not plotted)


def order(series: list[Series]) -> list[Series]:
    """The paper's families first (ReXNet, EfficientNet, ...), then the rest by name."""
    rank = {name: i for i, name in enumerate(COLORS)}
    return sorted(series, key=lambda s: (rank.get(s.family, len(rank)), s.name))


@dataclass
class Series:
    """One line of a panel: a family on one machine with one configuration, thread count and
    allocator."""

    family: str
    name: str
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    errs: list[tuple[float, float]] = field(default_factory=list)  # (below, above) the x value
    linestyle: Any = "-"  # one per machine


def plottable(
    records: Iterable[Record], families: Sequence[str] | None, top1: Top1
) -> tuple[list[Record], dict[str, int]]:
    """Records with a top-1 in the chosen families, and counts of what was left out."""
    keep: list[Record] = []
    hidden = {"family": 0, "top1": 0, "family:cpu": 0, "family:cuda": 0, "invalid": 0}
    wanted = None if families is None else {f.lower() for f in families}
    for r in records:
        spec = r.model.spec
        if (
            not r.valid
        ):  # its output differs from the eager fp32 model's (rexbench.measure.checks.parity)
            hidden["invalid"] += 1
        elif wanted is not None and r.model.family.lower() not in wanted:
            hidden["family"] += 1
            hidden[f"family:{r.device_kind}"] += r.latency is not None
        elif top1(spec) is None:
            hidden["top1"] += 1
        else:
            keep.append(r)
    return keep, hidden


def count_series(records: list[Record], axis: str, top1: Top1) -> list[Series]:
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
    return order(list(series.values()))


def _fields(r: Record) -> dict[str, str]:
    """What a line of a device panel holds fixed besides the family, as the legend writes it."""
    return {
        "machine": r.machine_id,
        "config": r.run.label,
        "dtype": r.dtype,
        "batch": f"batch {r.batch_size}",
        "threads": threads_text(threads(r)),
        "allocator": f"{allocator(r)} allocator",
    }


def line_names(chosen: list[Record]) -> list[str]:
    """Each record's line: "ReXNet", or with what differs among the records of the panel, e.g.
    "ReXNet - eager, 2 threads" or "ReXNet - xeon-8c-aaaa0001" (the caption names each machine)."""
    fields = [_fields(r) for r in chosen]
    varies = [k for k in fields[0] if len({f[k] for f in fields}) > 1] if fields else []
    return [
        " - ".join([r.model.family, ", ".join(f[k] for k in varies)]) if varies else r.model.family
        for r, f in zip(chosen, fields, strict=True)
    ]


def device_series(records: list[Record], kind: str, axis: str, top1: Top1) -> list[Series]:
    groups: dict[str, Series] = {}
    chosen = [r for r in records if r.device_kind == kind and r.latency is not None]
    chosen.sort(key=lambda r: top1(r.model.spec) or 0.0)
    machines = list(Record.by_machine(records))
    for r, name in zip(chosen, line_names(chosen), strict=True):
        lat = r.latency
        style = LINESTYLES[machines.index(r.machine_id) % len(LINESTYLES)]
        s = groups.setdefault(name, Series(r.model.family, name, linestyle=style))
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
    return order(list(groups.values()))


def paper_series(specs: Iterable[str], panel: str) -> list[Series]:
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
    return order(list(out.values()))
