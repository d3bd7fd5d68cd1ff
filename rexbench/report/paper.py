"""`rexbench report`: the paper's tables next to the measured ones, and hardware comparisons.

Paper vs measured (one machine): exact params and FLOPs against the paper's rounded numbers (with
the paper's own inconsistencies from `rexbench.paper.claims`), measured latency against the paper's
(on other hardware, said where shown), the fastest runtime per model (`rexbench.report.runtimes`)
and the paper's relative speed claims as measured ratios (`rexbench.report.claims`). Several
machines: `rexbench.report.compare`.
Rendering: `rexbench.report.render`. Numbers: `rexbench.paper.tables` (Tables 4, 5, A1, A2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.paper.claims import inconsistencies
from rexbench.paper.tables import UNIT_SCALE, Printed, entries, published, table
from rexbench.records.derived import zoo_entry
from rexbench.records.schema import Record
from rexbench.report.latest import allocator, latest, older_note, tags, threads, varying
from rexbench.report.render import Document, Section, fmt_latency, short_table

_PAPER_COLUMN = {"cpu": "cpu", "cuda": "gpu"}


def as_printed(exact: float, printed: Printed) -> str:
    """`exact` (base units) at the precision and unit the paper printed: 875828154 -> "0.88B"."""
    quantum = Decimal(1).scaleb(-printed.decimals)
    value = (Decimal(exact) / Decimal(UNIT_SCALE[printed.unit])).quantize(quantum, ROUND_HALF_UP)
    return f"{value}{printed.unit}"


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
        where = ", ".join(dict.fromkeys(short_table(t) for t in tables))
        if exact is None:
            cells.append(f"{text} ({where})")
            data.append({"printed": text, "tables": tables, "rounds": None})
            continue
        ok = printed.rounds(exact)
        mark = "ok" if ok else f"differs: exact rounds to {as_printed(exact, printed)}"
        cells.append(f"{text} ({where}) {mark}")
        data.append(
            {
                "printed": text,
                "tables": tables,
                "rounds": ok,
                "exact_as_printed": as_printed(exact, printed),
            }
        )
    return "; ".join(cells) or "-", data


def counts_section(records: Iterable[Record]) -> Section:
    """Exact params / macs_conv of every measured model against each printed paper value."""
    columns = [
        "model",
        "res",
        "params",
        "paper params",
        "FLOPs (macs_conv)",
        "paper FLOPs",
        "paper issues",
    ]
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
        issues = [
            i
            for i in (inconsistencies(spec) if r.model.zoo_entry else ())
            if {"params", "flops"} & set(i.fields)
        ]
        s.add(
            [
                spec,
                str(res or "-"),
                f"{params:,}" if params is not None else "-",
                p_cell,
                f"{macs:,}" if macs is not None else "-",
                f_cell,
                "; ".join(i.summary for i in issues) or "-",
            ],
            {
                "model": spec,
                "resolution": res,
                "params": params,
                "macs_conv": macs,
                "paper_params": p_data,
                "paper_flops": f_data,
                "inconsistencies": [i.id for i in issues],
            },
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
    columns = [
        "model",
        "device",
        "config",
        "batch",
        "measured ms [95% CI]",
        "paper ms",
        "measured/paper",
        "notes",
    ]
    s = Section("latency", "Latency: measured vs paper", columns, right={3, 4, 5, 6})
    hardware: dict[str, str] = {}
    timed = [r for r in records if r.latency is not None]
    varies = varying(timed)  # threads, allocator: named on every row where they differ
    for r in sorted(timed, key=lambda r: (r.device, r.run.label, r.model.spec, threads(r) or 0)):
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
        notes += [
            i.summary
            for i in (inconsistencies(spec) if r.model.zoo_entry else ())
            if {"cpu", "gpu"} & set(i.fields) and printed is not None
        ]
        ratio = lat.median_ms / printed.value if printed is not None else None
        s.add(
            [
                spec,
                f"{r.device} ({r.hardware})",
                ", ".join([f"{r.run.label} {r.dtype}", *tags(r, varies)]),
                str(lat.batch_size),
                fmt_latency(lat),
                f"{printed.text} ({short_table(table_id)})" if printed is not None else "-",
                f"{ratio:.2f}" if ratio is not None else "-",
                "; ".join(notes) or "",
            ],
            {
                "model": spec,
                **r.settings,
                "threads": threads(r),
                "allocator": allocator(r),
                "hardware": r.hardware,
                **lat.to_dict(),
                "paper": printed.text if printed is not None else None,
                "paper_table": table_id or None,
                "measured_over_paper": ratio,
                "notes": notes,
            },
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


# ---------------------------------------------------------------------------------------- build


def paper_sections(records: Sequence[Record]) -> list[Section]:
    from rexbench.report.claims import claims_section
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
    folders: Mapping[str, Sequence[Record]] | None = None,
) -> Document:
    """The whole report. One machine: paper vs measured. Several: the hardware comparison
    (rexbench.report.compare; RexbenchError on differing settings unless allow_mismatch) followed by
    paper vs measured on the reference machine. `folders` (records per folder given) lets a
    reference folder be compared with another folder of the same machine id
    (`rexbench.report.machines`). Of the records of one point, the newest is shown
    (`rexbench.report.latest`) and the older ones are named in the intro."""
    from rexbench.report import compare
    from rexbench.report.machines import groups

    named, reference, compared = groups(list(records), reference, folders)
    machines: dict[str, list[Record]] = {}
    older: list[Record] = []
    for name, group in named.items():
        machines[name], replaced = latest(group)
        older += replaced
    count = sum(len(group) for group in machines.values())
    doc = Document("rexbench report: paper vs measured")
    if sources:
        doc.intro.append(f"Records: {count} from {', '.join(f'`{p}`' for p in sources)}.")
    doc.intro += [line for line in (compared, older_note(older)) if line]
    if not count:
        doc.intro.append("No records found: run `rexbench sweep table5` first.")
        return doc
    ref = compare.resolve_reference(reference, list(machines))
    if len(machines) > 1:
        doc.title = "rexbench report: hardware comparison and paper vs measured"
        doc.sections += compare.sections(machines, ref, allow_mismatch=allow_mismatch)
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


def write(
    doc: Document,
    out: str | Path,
    records: Sequence[Record],
    figure: bool = True,
    figure_format: str = "png",
) -> dict[str, Path]:
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
