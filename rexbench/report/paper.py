"""`rexbench report`: the paper's tables next to the measured ones, and hardware comparisons.

Paper vs measured (one machine): exact params and FLOPs against the paper's rounded numbers (with
the paper's own inconsistencies from `rexbench.paper.claims`), measured latency against the paper's
(on other hardware, said where shown), and the paper's relative speed claims as measured ratios with
a bootstrap 95% CI (`rexbench.stats.ratio_interval`). Several machines: `rexbench.report.compare`.
Rendering: `rexbench.report.render`. Numbers: `rexbench.paper.tables` (Tables 4, 5, A1, A2).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.paper.claims import CLAIMS, Claim, inconsistencies
from rexbench.paper.tables import UNIT_SCALE, Printed, entries, published, table
from rexbench.records.derived import zoo_entry
from rexbench.records.schema import Record
from rexbench.report.render import Document, Section, fmt_latency

_PAPER_COLUMN = {"cpu": "cpu", "cuda": "gpu"}


def as_printed(exact: float, printed: Printed) -> str:
    """`exact` (base units) at the precision and unit the paper printed: 875828154 -> "0.88B"."""
    quantum = Decimal(1).scaleb(-printed.decimals)
    value = (Decimal(exact) / Decimal(UNIT_SCALE[printed.unit])).quantize(quantum, ROUND_HALF_UP)
    return f"{value}{printed.unit}"


def _short_table(table_id: str) -> str:
    """ "Table 5" -> "T5", "Table A1" -> "A1"."""
    rest = table_id.removeprefix("Table ")
    return f"T{rest}" if rest[:1].isdigit() else rest


# -------------------------------------------------------------------------------- counts section


def _paper_counts(spec: str, metric: str, exact: int | None, res: int | None) -> tuple[str, list]:
    """Every distinct printed value of `metric` with its tables, checked against the exact count."""
    cells, data = [], []
    seen: dict[str, list[str]] = {}
    for e in entries(spec) if zoo_entry(spec) else ():
        printed = e.metric(metric)
        if printed is not None and e.resolution == (res or e.resolution):
            seen.setdefault(printed.text, []).append(e.table)
    for text, tables in seen.items():
        printed = Printed.parse(text)
        where = ", ".join(dict.fromkeys(_short_table(t) for t in tables))
        if exact is None:
            cells.append(f"{text} ({where})")
            data.append({"printed": text, "tables": tables, "rounds": None})
            continue
        ok = printed.rounds(exact)
        mark = "ok" if ok else f"differs: exact rounds to {as_printed(exact, printed)}"
        cells.append(f"{text} ({where}) {mark}")
        data.append({"printed": text, "tables": tables, "rounds": ok,
                     "exact_as_printed": as_printed(exact, printed)})  # fmt: skip
    return "; ".join(cells) or "-", data


def counts_section(records: Iterable[Record]) -> Section:
    """Exact params / macs_conv of every measured model against each printed paper value."""
    columns = ["model", "res", "params", "paper params", "FLOPs (macs_conv)", "paper FLOPs",
               "paper issues"]  # fmt: skip
    s = Section(
        "counts",
        "Parameters and FLOPs: exact counts vs the paper's rounded numbers",
        columns,
        right={1, 2, 4},
        intro="FLOPs are multiply-adds of the conv and linear layers (macs_conv), the paper's "
        "convention. 'ok': the exact count prints as the paper's number at the paper's precision.",
    )
    seen = set()
    for r in sorted(records, key=lambda r: r.model.spec):
        res, spec = r.resolution, r.model.spec
        if (spec, res) in seen or not r.counts:
            continue
        seen.add((spec, res))
        params, macs = r.params, r.macs_conv
        p_cell, p_data = _paper_counts(spec, "params", params, res)
        f_cell, f_data = _paper_counts(spec, "flops", macs, res)
        issues = [i for i in (inconsistencies(spec) if r.model.zoo_entry else ())
                  if {"params", "flops"} & set(i.fields)]  # fmt: skip
        s.add(
            [
                spec,
                str(res or "-"),
                f"{params:,}" if params is not None else "-",
                p_cell,
                f"{macs:,}" if macs is not None else "-",
                f_cell,
                "; ".join(i.summary for i in issues) or "-",
            ],  # fmt: skip
            {
                "model": spec,
                "resolution": res,
                "params": params,
                "macs_conv": macs,
                "paper_params": p_data,
                "paper_flops": f_data,
                "inconsistencies": [i.id for i in issues],
            },  # fmt: skip
        )
    return s


# ------------------------------------------------------------------------------- latency section


def _paper_latency(spec: str, r: Record) -> tuple[Printed | None, Any, str]:
    """The paper's latency for the record's device (GPU FP16 column for fp16 runs where printed)."""
    row = published(spec) if r.model.zoo_entry else None
    if row is None:
        return None, None, ""
    column = _PAPER_COLUMN[r.device_kind]
    if column == "gpu" and r.dtype == "fp16" and row.gpu_fp16 is not None:
        column = "gpu_fp16"
    printed = row.metric(column)
    hw = getattr(table(row.table), column)
    return printed, hw, row.table


def latency_section(records: Iterable[Record]) -> Section:
    """Measured median per batch (95% CI) next to the paper's latency and its hardware."""
    columns = ["model", "device", "config", "batch", "measured ms [95% CI]", "paper ms",
               "measured/paper", "notes"]  # fmt: skip
    s = Section("latency", "Latency: measured vs paper", columns, right={3, 4, 5, 6})
    hardware: dict[str, str] = {}
    timed = [r for r in records if r.latency is not None]
    for r in sorted(timed, key=lambda r: (r.device, r.run.label, r.model.spec)):
        lat, spec = r.latency, r.model.spec
        printed, hw, table_id = _paper_latency(spec, r)
        notes = []
        if hw is not None:
            hardware[f"{r.device_kind}:{hw.device}"] = (
                f"paper {'CPU' if r.device_kind == 'cpu' else 'GPU'}: {hw.device}, batch "
                f"{hw.batch}, {hw.precision}, average of {hw.runs:,} runs ({hw.source})"
            )
            if hw.batch != lat.batch_size:
                notes.append(f"paper batch {hw.batch}")
        row = published(spec) if r.model.zoo_entry else None
        if row is not None and r.resolution not in (None, row.resolution):
            notes.append(f"paper at {row.resolution}px")
        if not r.valid:
            notes.append(f"INVALID: output differs from eager fp32 ({r.parity_text})")
        if lat.noisy:
            notes.append("noisy (IQR/median > 10%)")
        notes += [i.summary for i in (inconsistencies(spec) if r.model.zoo_entry else ())
                  if {"cpu", "gpu"} & set(i.fields) and printed is not None]  # fmt: skip
        ratio = lat.median_ms / printed.value if printed is not None else None
        s.add(
            [
                spec,
                f"{r.device} ({r.hardware})",
                r.run.label + f" {r.dtype}",
                str(lat.batch_size),
                fmt_latency(lat),
                f"{printed.text} ({_short_table(table_id)})" if printed is not None else "-",
                f"{ratio:.2f}" if ratio is not None else "-",
                "; ".join(notes) or "",
            ],  # fmt: skip
            {
                "model": spec,
                **r.settings,
                "hardware": r.hardware,
                **lat.to_dict(),
                "paper": printed.text if printed is not None else None,
                "paper_table": table_id or None,
                "measured_over_paper": ratio,
                "notes": notes,
            },  # fmt: skip
        )
    s.intro = (
        "Different hardware: the paper's latencies are averages on its own machines, so the last "
        "ratio compares this machine with the paper's, it does not test the paper. "
        + " ".join(f"{v}." for v in hardware.values())
    ).strip()
    s.notes.append(
        "measured: median per batch of the record's raw samples; [95% CI]: distribution-free "
        "confidence interval of the median (order statistics)."
    )
    return s


# -------------------------------------------------------------------------------- claims section


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
    return (r.device, r.run.label, r.batch_size, r.dtype)


def claim_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Each speed claim whose two models were measured here with the same settings (device, config,
    batch, dtype), as measured speed-up = baseline median / model median with a bootstrap 95% CI."""
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
            out.append({
                "id": claim.id, "statement": claim.statement, "source": claim.source,
                "relation": claim.relation, "stated": claim.stated,
                "paper_table_value": claim.from_table(), "table": claim.table,
                "model": claim.model, "baseline": claim.baseline, "device": r.device,
                "config": r.run.label, "dtype": r.dtype, "batch_size": r.batch_size,
                "measured": value, "ci_low": ci.low, "ci_high": ci.high,
                "holds": claim.holds(value), "verdict": claim.verdict(value, ci.low, ci.high),
                "edges": list(claim.edges()),
                "measured_together": r.measured_with(base),
            })  # fmt: skip
    return sorted(out, key=lambda row: (_CLAIM_ORDER[row["id"]], row["device"], row["config"]))


_CLAIM_ORDER = {c.id: i for i, c in enumerate(CLAIMS)}


def ratio_text(value: float, low: float, high: float, edges: Sequence[float]) -> str:
    """ "1.07x [1.06, 1.08]"; with 3 or 4 decimals where a number lies within 0.01 (or 0.001) of
    an edge of the claim, so that the digits show on which side it falls: "0.9980x [0.9960, 1.0002]"."""
    near = min((abs(v - e) for v in (value, low, high) for e in edges), default=1.0)
    digits = 4 if near < 0.001 else 3 if near < 0.01 else 2
    return f"{value:.{digits}f}x [{low:.{digits}f}, {high:.{digits}f}]"


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
    for row in rows:
        s.add(
            [
                f"{row['statement']} ({row['source']})",
                f"{row['config']} {row['dtype']} on {row['device']}, batch {row['batch_size']}",
                f"{row['relation']}{row['stated']:g}x ({_short_table(row['table'])}: "
                f"{row['paper_table_value']:.2f}x)",
                ratio_text(row["measured"], row["ci_low"], row["ci_high"], row["edges"]),
                row["verdict"],
                "together" if row["measured_together"] else "apart",
            ],  # fmt: skip
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


# ---------------------------------------------------------------------------------------- build


def paper_sections(records: Sequence[Record]) -> list[Section]:
    from rexbench.report.runtimes import runtime_section

    return [
        counts_section(records),
        latency_section(records),
        runtime_section(records),
        claims_section(records),
    ]


def build(
    records: Iterable[Record],
    *,
    reference: str | None = None,
    allow_mismatch: bool = False,
    sources: Sequence[str] = (),
) -> Document:
    """The whole report. One machine: paper vs measured. Several: the hardware comparison
    (rexbench.report.compare; RexbenchError on differing settings unless allow_mismatch) followed by
    paper vs measured on the reference machine."""
    from rexbench.report import compare

    records, dropped = Record.latest(records)
    machines = Record.by_machine(records)
    doc = Document("rexbench report: paper vs measured")
    if sources:
        doc.intro.append(f"Records: {len(records)} from {', '.join(f'`{p}`' for p in sources)}.")
    if dropped:
        doc.intro.append(
            f"{dropped} older duplicate record(s) of the same model and config ignored."
        )
    if not records:
        doc.intro.append("No records found: run `rexbench sweep table5` first.")
        return doc
    ref = compare.resolve_reference(reference, list(machines))
    if len(machines) > 1:
        doc.title = "rexbench report: hardware comparison and paper vs measured"
        doc.sections += compare.sections(records, ref, allow_mismatch=allow_mismatch)
    else:
        doc.sections.append(compare.fingerprint_section(machines))
    mine = machines[ref]
    doc.intro.append(f"Paper vs measured on `{ref}`: {mine[0].machine_label}.")
    doc.extra = {"machines": list(machines), "reference": ref}
    doc.sections += paper_sections(mine)
    return doc


def _figure(records: Sequence[Record], figure_format: str) -> bytes | None:
    """Figure 3 with the paper's own points as hollow markers, encoded; None when no record is of
    the figure's families (the report goes without it)."""
    from rexbench.report.figure3 import NothingToPlot, figure3, figure_bytes

    try:
        return figure_bytes(figure3(records, paper=True), figure_format)
    except NothingToPlot:
        return None


def write(doc: Document, out: str | Path, records: Sequence[Record], figure: bool = True,
          figure_format: str = "png") -> dict[str, Path]:  # fmt: skip
    """report.md, report.html (self-contained, figure embedded) and figure3.png|svg (with the
    paper's points as hollow markers) into `out`."""
    from rexbench.records.store import atomic_write_text
    from rexbench.report.render import to_html, to_markdown

    folder = Path(out)
    paths: dict[str, Path] = {}
    data = _figure(records, figure_format) if figure and records else None
    if data is not None:
        paths["figure"] = folder / f"figure3.{figure_format}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            paths["figure"].write_bytes(data)
        except OSError as exc:
            raise RexbenchError(
                f"cannot write {paths['figure']}: {exc.strerror or exc}; choose another --out"
            ) from None
    ref = (
        f"![Figure 3: top-1 vs FLOPs, CPU and GPU latency]({paths['figure'].name})"
        if data
        else None
    )
    paths["markdown"] = atomic_write_text(folder / "report.md", to_markdown(doc, ref))
    paths["html"] = atomic_write_text(folder / "report.html", to_html(doc, data, figure_format))
    return paths
