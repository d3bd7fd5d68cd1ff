"""Gate verdicts as text: value formatting shared by the Rich table, and the Markdown summary that
`rexbench gate --summary FILE` appends (GitHub's $GITHUB_STEP_SUMMARY takes GitHub-flavoured Markdown)."""

from __future__ import annotations

from rexbench.gate import INCONCLUSIVE, NOT_COMPARABLE, PASS, REGRESSION, GateReport, Verdict

ICONS = {PASS: "✅", REGRESSION: "❌", INCONCLUSIVE: "⚠️", NOT_COMPARABLE: "➖"}


def value(verdict: Verdict, x: float | None) -> str:
    """A compared value in its unit: counts with thousands separators, latency in ms, images/s."""
    if x is None:
        return "-"
    if verdict.config == "counts":
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
