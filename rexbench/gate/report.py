"""A gate run's verdicts together (`GateReport`: status and exit code), value formatting shared by the
Rich table, and the Markdown summary that `rexbench gate --summary FILE` appends (GitHub's
$GITHUB_STEP_SUMMARY takes GitHub-flavoured Markdown)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.gate.checks import INCONCLUSIVE, NOT_COMPARABLE, OUTCOMES, PASS, REGRESSION, Verdict


@dataclass
class GateReport:
    """Every verdict of a gate run, notes (source changes, warnings) and the resulting exit code."""

    verdicts: list[Verdict]
    notes: list[str] = field(default_factory=list)
    strict: bool = False
    fail_on_inconclusive: bool = False

    def count(self, outcome: str) -> int:
        return sum(v.outcome == outcome for v in self.verdicts)

    @property
    def failing(self) -> list[Verdict]:
        """Verdicts that fail the gate: regressions; not comparable with --strict; inconclusive
        with --fail-on-inconclusive."""
        bad = {REGRESSION}
        bad |= {NOT_COMPARABLE} if self.strict else set()
        bad |= {INCONCLUSIVE} if self.fail_on_inconclusive else set()
        return [v for v in self.verdicts if v.outcome in bad]

    @property
    def exit_code(self) -> int:
        """0 pass (inconclusive / not comparable only warn by default), 1 failure."""
        return 1 if self.failing else 0

    @property
    def status(self) -> str:
        if self.failing:
            return "FAIL"
        return (
            "PASS with warnings"
            if self.count(INCONCLUSIVE) + self.count(NOT_COMPARABLE)
            else "PASS"
        )

    def headline(self) -> str:
        counts = ", ".join(f"{self.count(o)} {o}" for o in OUTCOMES if self.count(o))
        return f"gate: {self.status} ({counts or 'no checks'})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "strict": self.strict,
            "fail_on_inconclusive": self.fail_on_inconclusive,
            "counts": {o: self.count(o) for o in OUTCOMES},
            "verdicts": [v.to_dict() for v in self.verdicts],
            "notes": list(self.notes),
        }


ICONS = {PASS: "✅", REGRESSION: "❌", INCONCLUSIVE: "⚠️", NOT_COMPARABLE: "➖"}


def value(verdict: Verdict, x: float | None) -> str:
    """A compared value in its unit: counts with thousands separators, latency in ms, images/s."""
    if x is None:
        return "-"
    if verdict.config == "counts" or verdict.check.startswith("instructions"):
        return f"{int(x):,}"
    if verdict.check.startswith("throughput"):
        return f"{x:,.1f} img/s"
    return f"{x / 1e6:,.3f} ms"


def ratio(verdict: Verdict) -> str:
    if verdict.ratio is None:
        return "-"
    text = f"{verdict.ratio:.3f}"
    return f"{text} ({verdict.normalisation})" if verdict.normalisation else text


def limit(verdict: Verdict) -> str:
    if verdict.limit is None:
        return (
            "= (exact)" if verdict.config == "counts" and verdict.outcome != NOT_COMPARABLE else "-"
        )
    return f"<= {verdict.limit:.3f}"


def evidence(verdict: Verdict) -> str:
    """p-value and bootstrap interval of a latency verdict; '-' for counts."""
    if verdict.p_value is None or verdict.ci is None:
        return "-"
    return f"p={verdict.p_value:.2g}, CI [{verdict.ci[0]:.3f}, {verdict.ci[1]:.3f}]"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: GateReport, title: str = "rexbench gate") -> str:
    """The report as a Markdown section: headline, verdict table, notes and how to read it."""
    lines = [f"### {title}: {report.status}", "", report.headline(), ""]
    lines += [
        "| model | config | check | baseline | current | ratio | limit | evidence | outcome | reason |",
        "|---|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    for v in report.verdicts:
        cells = (
            v.model,
            v.config,
            v.check,
            value(v, v.baseline),
            value(v, v.current),
            ratio(v),
            limit(v),
            evidence(v),
            f"{ICONS.get(v.outcome, '')} {v.outcome}",
            v.reason,
        )
        lines.append("| " + " | ".join(_cell(str(c)) for c in cells) + " |")
    if report.notes:
        lines += ["", "Notes:", ""] + [f"- {_cell(n)}" for n in report.notes]
    lines += [
        "",
        "Counts compare exactly. A latency regression needs the ratio above the limit *and* a "
        "significant slowdown (one-sided Mann-Whitney p < alpha and bootstrap CI low > 1); "
        "ratios are normalised by the drift anchor when both runs have one.",
        "",
    ]
    return "\n".join(lines) + "\n"


def append_summary(path: Path, report: GateReport) -> None:
    """Append the report's Markdown to `path` (e.g. $GITHUB_STEP_SUMMARY)."""
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(markdown(report))
    except OSError as exc:
        raise RexbenchError(f"cannot append the summary to {path}: {exc.strerror or exc}") from None
