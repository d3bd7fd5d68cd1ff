"""The report's section on the paper's relative speed claims (`rexbench.paper.claims`): each claim
whose two models were measured here with identical settings, as a measured ratio of medians with a
bootstrap 95% CI (`rexbench.stats.ratio_interval`) and whether it holds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rexbench.paper.claims import CLAIMS, Claim
from rexbench.records.schema import Record
from rexbench.report.latest import allocator, threads, threads_text
from rexbench.report.render import Section, short_table


def _speed_claims() -> list[Claim]:
    return [c for c in CLAIMS if c.metric in ("cpu", "gpu", "gpu_fp16")]


def _claim_matches(claim: Claim, r: Record) -> bool:
    kind = "cpu" if claim.metric == "cpu" else "cuda"
    if r.device_kind != kind or r.latency is None:
        return False
    if claim.metric == "gpu_fp16":
        return r.dtype == "fp16"
    return claim.metric == "cpu" or r.dtype != "fp16"


def _pair_key(r: Record) -> tuple:
    return (r.device, r.run.label, r.batch_size, r.dtype, threads(r), allocator(r))


def claim_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Each speed claim whose two models were measured here with the same settings (device, config,
    batch, dtype, threads, allocator), as measured speed-up = baseline median / model median with a bootstrap 95% CI."""
    from rexbench.stats import Samples, ratio_interval

    index = {(r.model.spec, *_pair_key(r)): r for r in records if r.valid}
    out = []
    for claim in _speed_claims():
        for r in records:
            if r.model.spec != claim.model or not r.valid or not _claim_matches(claim, r):
                continue
            base = index.get((claim.baseline, *_pair_key(r)))
            if base is None:
                continue
            # speed-up = median(base) / median(r); 95% CI: the 2.5% and 97.5% bootstrap quantiles
            ci = ratio_interval(Samples(r.samples), Samples(base.samples), "median", alpha=0.025)
            value = claim.compute(r.latency.median_ms, base.latency.median_ms)
            out.append(
                {
                    "id": claim.id,
                    "statement": claim.statement,
                    "source": claim.source,
                    "relation": claim.relation,
                    "stated": claim.stated,
                    "paper_table_value": claim.from_table(),
                    "table": claim.table,
                    "model": claim.model,
                    "baseline": claim.baseline,
                    "device": r.device,
                    "config": r.run.label,
                    "dtype": r.dtype,
                    "batch_size": r.batch_size,
                    "threads": threads(r),
                    "allocator": allocator(r),
                    "measured": value,
                    "ci_low": ci.low,
                    "ci_high": ci.high,
                    "holds": claim.holds(value),
                    "verdict": claim.verdict(value, ci.low, ci.high),
                    "edges": list(claim.edges()),
                    "measured_together": r.measured_with(base),
                }
            )
    return sorted(
        out,
        key=lambda row: (
            _CLAIM_ORDER[row["id"]],
            row["device"],
            row["config"],
            row["threads"] or 0,
        ),
    )


_CLAIM_ORDER = {c.id: i for i, c in enumerate(CLAIMS)}


def ratio_text(value: float, low: float, high: float, edges: Sequence[float]) -> str:
    """ "1.07x [1.06, 1.08]"; with 3 or 4 decimals where a number lies within 0.01 (or 0.001) of
    an edge of the claim, so that the digits show on which side it falls: "0.9980x [0.9960, 1.0002]"."""
    near = min((abs(v - e) for v in (value, low, high) for e in edges), default=1.0)
    digits = 4 if near < 0.001 else 3 if near < 0.01 else 2
    return f"{value:.{digits}f}x [{low:.{digits}f}, {high:.{digits}f}]"


def _config_cell(row: dict[str, Any], many: set[str]) -> str:
    """ "eager fp32 on cpu, batch 1", with the threads and allocator where rows differ in them."""
    cell = f"{row['config']} {row['dtype']} on {row['device']}, batch {row['batch_size']}"
    cell += f", {threads_text(row['threads'])}" if "threads" in many else ""
    return cell + (f", {row['allocator']} allocator" if "allocator" in many else "")


def claims_section(records: Sequence[Record]) -> Section:
    s = Section(
        "claims",
        "The paper's relative speed claims, measured",
        ["claim", "config", "paper", "measured [95% CI]", "holds here", "timed"],
        right={2, 3},
        intro="Speed-up = baseline latency / model latency (> 1: the first model is faster), per "
        "configuration (PyTorch eager or compiled, ONNX Runtime `ort`, OpenVINO `openvino`). Only "
        "claims whose two models were measured here with identical settings are shown; a "
        "configuration whose output differs from eager fp32 (invalid) is left out.",
    )
    rows = claim_rows(records)
    many = {k for k in ("threads", "allocator") if len({row[k] for row in rows}) > 1}
    for row in rows:
        s.add(
            [
                f"{row['statement']} ({row['source']})",
                _config_cell(row, many),
                f"{row['relation']}{row['stated']:g}x ({short_table(row['table'])}: "
                f"{row['paper_table_value']:.2f}x)",
                ratio_text(row["measured"], row["ci_low"], row["ci_high"], row["edges"]),
                row["verdict"],
                "together" if row["measured_together"] else "apart",
            ],
            row,
        )
    apart = sum(not row["measured_together"] for row in rows)
    if apart:
        s.notes.append(
            f"{apart} claim row(s) rest on two records timed apart (different runs, possibly "
            "minutes or machines' moods apart): drift between them is not cancelled; `rexbench sweep` "
            "times the models of a claim together (--interleave claims)."
        )
    if not s.rows:
        s.notes.append(
            "No claim has both of its models measured here with one configuration: "
            "`rexbench sweep table5` measures the Table 5 pairs."
        )
    s.notes.append(
        "'≈' holds within 10% of the stated ratio; 'tie (within CI)': the interval contains the "
        "ratio where the claim turns, so this measurement cannot tell; CI: percentile bootstrap of the ratio of medians "
        "(2,000 resamples, seed 0)."
    )
    return s
