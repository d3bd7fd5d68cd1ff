"""A metric across commits: records of many commits in, one series per model x configuration x
machine out, ordered by commit date, with its steps (rexbench.report.changepoint), as Markdown and
as a figure. What `rexbench history` shows. No Typer or Rich.

Every record carries the git commit it was measured at (`env.git`, with its committer date since
this version; for older records the date is asked from git in the working directory, else the
record's creation time is used). Several records of one commit (re-runs) count once: the newest.
Latency is compared only within one machine (machine_id), as everywhere in rexbench.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rexbench.errors import RexbenchError
from rexbench.report.changepoint import MIN_SEGMENT, Step, detect_steps, exact_steps

if TYPE_CHECKING:
    from rexbench.records.schema import Record

COUNT_METRICS = ("params", "macs_conv", "instructions")
#: Latency steps smaller than this are not reported (A/A runs on a quiet machine move p10 by ~3%).
MIN_LATENCY_STEP = 0.03
#: Instruction counts repeat to about 1e-4 (rexbench.measure.counting.instructions): steps from 0.5%.
MIN_INSTRUCTION_STEP = 0.005


@dataclass
class Point:
    commit: str
    date: str
    value: float
    dirty: bool = False
    created: str = ""

    @property
    def label(self) -> str:
        return self.commit[:8] + ("+" if self.dirty else "")


@dataclass
class Series:
    model: str
    config: str
    machine: str
    metric: str
    points: list[Point] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.model} ({self.config}) on {self.machine}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "config": self.config,
            "machine": self.machine,
            "metric": self.metric,
            "points": [p.__dict__ for p in self.points],
            "steps": [{**s.to_dict(), "commit": self.points[s.index].commit} for s in self.steps],
        }


def check_metric(metric: str) -> str:
    """`latency.p10` / `latency.median` / `latency.mean` / `latency.pNN`, or a count metric."""
    from rexbench.stats import quantile_of

    name = metric.strip().lower()
    if name in COUNT_METRICS:
        return name
    stat = name.partition(".")[2] if name.startswith("latency.") else ""
    if stat in ("median", "mean") or quantile_of(stat) is not None:
        return name
    raise RexbenchError(
        f"unknown metric {metric!r}: use latency.p10, latency.median, latency.mean, latency.pNN, "
        f"{', '.join(COUNT_METRICS)}"
    )


def metric_value(record: Record, metric: str) -> float | None:
    """The metric of one record: latency statistics in ms (raw samples), counts as numbers."""
    if metric.startswith("latency."):
        from rexbench.stats import statistic

        samples = record.samples
        if not samples:
            return None
        return float(statistic(np.asarray(samples, float), metric.partition(".")[2])) / 1e6
    if metric == "params":
        return record.params
    value = record.counts.get(metric)
    return float(value) if isinstance(value, (int, float)) else None


def commit_date(
    commit: str, cwd: str | Path | None = None, cache: dict | None = None
) -> str | None:
    """The committer date (ISO 8601) of `commit` in the git work tree at `cwd`, or None."""
    cache = {} if cache is None else cache
    if commit not in cache:
        try:
            out = subprocess.run(
                ["git", "show", "-s", "--format=%cI", commit],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        cache[commit] = out or None
    return cache[commit]


def build_history(
    records: Iterable[Record],
    metric: str,
    models: Sequence[str] = (),
    cwd: str | Path | None = None,
) -> tuple[list[Series], list[str]]:
    """(one series per model x config x machine with 2+ commits, notes on what was skipped)."""
    metric = check_metric(metric)
    wanted = set(models)
    groups: dict[tuple[str, str, str], dict[str, tuple[Point, str]]] = {}
    dates: dict[str, str | None] = {}
    skipped = 0
    for record in records:
        if wanted and record.model.spec not in wanted:
            continue
        git = record.env.get("git") or {}
        value = metric_value(record, metric)
        if not git.get("commit") or value is None:
            skipped += 1
            continue
        commit = git["commit"]
        date = git.get("date") or commit_date(commit, cwd, dates) or record.created
        point = Point(commit, date, value, bool(git.get("dirty")), record.created)
        per_commit = groups.setdefault((record.model.spec, record.run.label, record.machine_id), {})
        if commit not in per_commit or record.created > per_commit[commit][1]:
            per_commit[commit] = (point, record.created)
    series = []
    for (model, config, machine), per_commit in sorted(groups.items()):
        points = sorted((p for p, _ in per_commit.values()), key=lambda p: (p.date, p.created))
        s = Series(model, config, machine, metric, points)
        s.steps = find_steps(s)
        series.append(s)
    notes = (
        [f"{skipped} record(s) without a git commit or without {metric} skipped"] if skipped else []
    )
    return series, notes


def find_steps(series: Series) -> list[Step]:
    """Exact counts: every change is a step. Latency and instruction counts (which vary a little):
    change points of at least MIN_LATENCY_STEP / MIN_INSTRUCTION_STEP."""
    values = [p.value for p in series.points]
    if series.metric in ("params", "macs_conv"):
        return exact_steps(values)
    smallest = MIN_INSTRUCTION_STEP if series.metric == "instructions" else MIN_LATENCY_STEP
    return detect_steps(values, min_size=smallest, min_segment=MIN_SEGMENT)


def format_value(metric: str, value: float) -> str:
    return f"{value:.3f} ms" if metric.startswith("latency.") else f"{value:,.0f}"


def format_step(step: Step, metric: str) -> str:
    size = f"{step.size:+.1%}" if step.relative else f"{step.size:+,.0f}"
    return (
        f"{format_value(metric, step.before)} -> {format_value(metric, step.after)} ({size}, "
        f"confidence {step.confidence:.3f})"
    )


def markdown(series: Sequence[Series], notes: Sequence[str] = ()) -> str:
    """A CI summary: per series the steps found, then its values per commit."""
    if not series:
        return "### rexbench history\n\nNo series with records of two or more commits.\n"
    metric = series[0].metric
    lines = [f"### rexbench history: {metric}", ""]
    for s in series:
        lines += [f"#### {s.title}", ""]
        if s.steps:
            lines += [
                f"- **step at {s.points[st.index].label}** ({s.points[st.index].date[:10]}): "
                f"{format_step(st, metric)}"
                for st in s.steps
            ]
        else:
            lines.append(f"- no step over {len(s.points)} commits")
        lines += ["", "| commit | date | value |", "|---|---|---:|"]
        starts = {st.index for st in s.steps}
        for i, p in enumerate(s.points):
            mark = " (step)" if i in starts else ""
            lines.append(f"| {p.label}{mark} | {p.date[:19]} | {format_value(metric, p.value)} |")
        lines.append("")
    lines += [f"- {n}" for n in notes]
    lines.append(
        "Steps: binary segmentation with a permutation test (a step must fit better than a line "
        "through the points, p < 0.01, and move latency by at least 3%)."
    )
    return "\n".join(lines) + "\n"


def plot(series: Sequence[Series], path: str | Path) -> Path:
    """One panel per series: the values per commit, the levels between steps, the steps marked."""
    from rexbench.figures import check_figure_path, new_figure

    if not series:
        raise RexbenchError("nothing to plot: no series with records of two or more commits")
    out = check_figure_path(path, create_parent=True, option="--plot")
    fig = new_figure(max(6.0, 0.25 * max(len(s.points) for s in series) + 3), 2.6 * len(series))
    axes = fig.subplots(len(series), 1, squeeze=False)[:, 0]
    for ax, s in zip(axes, series, strict=True):
        x = np.arange(len(s.points))
        ax.plot(x, [p.value for p in s.points], "o-", ms=3, lw=0.8, color="tab:blue")
        bounds = [0, *(st.index for st in s.steps), len(s.points)]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            level = float(np.median([p.value for p in s.points[lo:hi]]))
            ax.hlines(level, lo - 0.4, hi - 0.6, colors="tab:orange", lw=2)
        for st in s.steps:
            ax.axvline(st.index - 0.5, color="tab:red", ls="--", lw=1)
            size = f"{st.size:+.1%}" if st.relative else f"{st.size:+,.0f}"
            ax.annotate(
                size,
                (st.index - 0.5, ax.get_ylim()[1]),
                color="tab:red",
                ha="left",
                va="top",
                fontsize=8,
            )
        if len(s.points) <= 40:
            ax.set_xticks(x, [p.label for p in s.points], rotation=60, fontsize=7)
        ax.set_title(s.title, fontsize=9)
        ax.set_ylabel(s.metric + (" (ms)" if s.metric.startswith("latency.") else ""))
    fig.savefig(out)
    return out
