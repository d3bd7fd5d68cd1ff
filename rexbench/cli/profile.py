"""`rexbench profile`: latency of models under one or more configurations, as records (rexbench.measure.run.profile)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rexbench.cli.common import console, print_json, print_tables
from rexbench.cli.options import (
    RUNS,
    Allocator,
    AllocatorOpt,
    FlushL2Opt,
    InProcessOpt,
    InstructionsOpt,
    JsonOpt,
    MeasureOptions,
    ModelsArg,
    OutOpt,
    TimeoutOpt,
    WeightsOpt,
    isolation,
    measure_options,
)
from rexbench.cli.outcome import AllowMismatchOpt, exit_code
from rexbench.cli.progress import ProgressView

if TYPE_CHECKING:
    from rich.table import Table

    from rexbench.records.schema import Record

BESIDE = (
    "beside an earlier record of the same model and configuration, which is kept "
    "(report, gate and history read the newest)"
)


@measure_options()
def profile(
    ctx: typer.Context,
    models: ModelsArg,
    *,
    measure: MeasureOptions,
    flush_l2: FlushL2Opt = False,
    weights: WeightsOpt = None,
    out: OutOpt = RUNS,
    allow_mismatch: AllowMismatchOpt = False,
    instructions: InstructionsOpt = False,
    in_process: InProcessOpt = False,
    allocator: AllocatorOpt = Allocator.steady,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Time models on this machine (median, p90, CI, throughput, GFLOP/s) and store one record each.

    Several configurations (--config eager,compile_cl,max,ort,openvino) are measured interleaved, so machine drift hits all alike; the table shows each one's speedup over the first. Each configuration runs in a worker process of its own, with its own threads and allocator (--allocator), one at a time. Each configuration's output is checked against the eager fp32 model's first: one that differs is recorded as invalid and the command exits 1 (unless --allow-mismatch); one that cannot be prepared, or whose worker crashes or runs past --timeout, is one line, and the others are still measured. A record never replaces an earlier one: a model and configuration measured again get a new file beside it.
    """
    from rexbench.measure.config import build_configs
    from rexbench.measure.run.parts import REAL
    from rexbench.measure.run.profile import profile_models

    configs, note = build_configs(replace(measure.config_options(), flush_l2=flush_l2))
    # a run given test doubles (ctx.obj) stays in this process (profile_models)
    kept_apart = isolation(in_process or ctx.obj is not None, allocator, timeout)
    note = f"{note}; {kept_apart.describe()}"
    err = console(stderr=True)  # nothing is printed before the run: an error comes first
    kept: list[Path] = []
    failures: list[Any] = []
    view = ProgressView(err, len(configs) + 1, measure.runs, measure.warmup)

    def saved(record: Record, path: Path | None) -> None:
        if path is not None:
            kept.append(path)

    try:
        with view:
            records = profile_models(
                models,
                configs,
                weights=weights,
                input_shape=measure.input_shape,
                out_dir=out,
                progress=view.update,
                on_record=saved,
                on_failure=failures.append,
                instructions=instructions,
                parts=ctx.obj or REAL,  # what rexbench.cli.run was given (tests: a fake device)
                isolation=kept_apart,
            )
    except KeyboardInterrupt:
        where = f" in {kept[0].parent}" if kept else ""
        err.print(f"interrupted: {len(kept)} finished record(s) kept{where}", highlight=False)
        raise typer.Exit(130) from None
    data = table_data(records, kept, note, failures)
    if json_out:
        print_json(data)
    else:
        _show(data, kept, err)
        err.print(f"note: {note}", highlight=False)
    code = exit_code(err, records, failures, allow_mismatch)
    if code:
        raise typer.Exit(code)


def _show(data: dict[str, Any], kept: list[Path], err: Any) -> None:
    print_tables(render(data))
    for row in data["rows"]:
        for warning in row["warnings"]:
            err.print(
                f"[yellow]warning[/]: {row['model']} {row['config']}: {warning}", highlight=False
            )
    if kept:
        err.print(f"{len(kept)} record(s) written to {kept[0].parent}", highlight=False)
    beside = sum(row["beside_earlier"] for row in data["rows"])
    if beside:
        err.print(f"{beside} of them {BESIDE}", highlight=False)


# -------------------------------------------------------------------------------------- output


def table_data(
    records: list[Record], paths: list[Path], note: str = "", failures: Sequence[Any] = ()
) -> dict[str, Any]:
    """What the table shows and --json prints: one row per record, times in milliseconds, and the
    configurations that failed to prepare or were skipped (one line each)."""
    from rexbench.measure.run.counted import MACS_CONVENTION

    rows = []
    first: dict[str, float] = {}
    several = len({r.run.config_id for r in records}) > 1
    for i, record in enumerate(records):
        s, t, config = record.summary or UNMEASURED, record.timing, record.run.config
        if record.valid:  # speed-ups are over the first valid configuration of the model
            first.setdefault(record.model.spec, s["median"])
        speedup = first.get(record.model.spec) if several and record.valid else None
        rows.append(
            {
                "model": record.model.spec,
                "config": record.run.label,
                "config_id": record.run.config_id,
                "device": config["device"],
                "batch": config["batch_size"],
                "dtype": config["dtype"],
                "threads": t.backend.get("threads") if t else None,
                "input_shape": record.counts.get("input_shape"),
                "runs": s["n"],
                "median_ms": _ms(s["median"]),
                "p90_ms": _ms(s["p90"]),
                "ci_low_ms": _ms(s["ci_low"]),
                "ci_high_ms": _ms(s["ci_high"]),
                "throughput": s["throughput"],
                "params": record.counts.get("params"),
                "macs_conv": record.counts.get("macs_conv"),
                "gflops_per_s": s.get("gflops_per_s"),
                "noise": s["noise"],
                "noisy": s["noisy"],
                "speedup": speedup / s["median"] if speedup else None,
                "valid": record.valid,
                "parity": dict(record.parity),
                "parity_cell": record.parity_cell,
                "compile_s": t.compile_s if t else None,
                "anchor_median_ms": s["anchor_median"] / 1e6 if s.get("anchor_median") else None,
                "warnings": list(record.warnings),
                "record": str(paths[i]) if i < len(paths) else None,
                "beside_earlier": i < len(paths) and _beside_earlier(record, paths[i]),
            }
        )
    failed = [f.line for f in failures if not f.skipped]
    skipped = [f.line for f in failures if f.skipped]  # a precision this machine cannot run
    return {
        "note": note,
        "conventions": MACS_CONVENTION,
        "rows": rows,
        "failed": failed,
        "skipped": skipped,
    }


def _beside_earlier(record: Record, path: str | Path) -> bool:
    """Whether the record was written beside an earlier one of its model and configuration (its
    file then has a number: rexbench.records.store.write_record)."""
    from rexbench.records.store import record_filename

    run = record.run
    return Path(path).name != record_filename(record.model.spec, run.label, run.config_id)


#: the summary of a record without samples (its worker failed before its first chunk)
UNMEASURED: dict[str, Any] = dict.fromkeys(
    ("n", "median", "p90", "ci_low", "ci_high", "throughput", "noise", "noisy")
)


def _ms(ns: float | None) -> float | None:
    return None if ns is None else ns / 1e6


def render(data: dict[str, Any]) -> Table:
    """One row per record. Units sit under the headers and a batch size shared by every row goes
    into the title, so the table fits a 120-column terminal (rexbench.cli.tables stacks it on
    narrower pages)."""
    from rich import box
    from rich.table import Table

    rows = data["rows"]
    several = any(r["speedup"] is not None for r in rows)
    batches = sorted({r["batch"] for r in rows})
    one_batch = len(batches) == 1
    title = "rexbench profile" + (f", batch {batches[0]}" if one_batch else "")
    table = Table(
        title=title,
        caption=data["conventions"],
        box=box.SIMPLE_HEAD,
        padding=(0, 0, 0, 1),
        pad_edge=False,
        show_edge=False,
        title_justify="left",
        caption_justify="left",
    )
    headers = [
        "model",
        "config",
        *([] if one_batch else ["batch"]),
        "median\nms",
        "p90\nms",
        "95% CI\nms",
        "img/s",
        "params\nM",
        "GMACs",
        "GFLOP/s",
        "IQR/\nmed",
        "compile\ns",
        "vs eager\nfp32",
        *(["speedup"] if several else []),
    ]
    for name in headers:
        table.add_column(
            name, justify="left" if name in ("model", "config") else "right", no_wrap=True
        )
    for r in rows:
        if (
            r["median_ms"] is None
        ):  # no sample: a worker that failed first (rexbench.measure.run.workers)
            cells = [r["model"], f"{r['config']} [red](failed)[/]", *["-"] * (len(headers) - 2)]
            table.add_row(*cells)
            continue
        noise = f"{r['noise']:.1%}" + (" ⚠" if r["noisy"] else "")
        cells = [
            r["model"],
            r["config"] if r["valid"] else f"{r['config']} [red](invalid)[/]",
            *([] if one_batch else [str(r["batch"])]),
            f"{r['median_ms']:.3f}",
            f"{r['p90_ms']:.3f}",
            f"{r['ci_low_ms']:.3f}-{r['ci_high_ms']:.3f}",
            f"{r['throughput']:.1f}",
            _fmt(r["params"], 1e6, 3),
            _fmt(r["macs_conv"], 1e9, 4),
            _fmt(r["gflops_per_s"], 1, 1),
            f"[yellow]{noise}[/]" if r["noisy"] else noise,
            "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}",
            r["parity_cell"] if r["valid"] else f"[red]{r['parity_cell']}[/]",
        ]
        if several:
            cells.append("-" if r["speedup"] is None else f"{r['speedup']:.2f}x")
        table.add_row(*cells)
    return table


def _fmt(value: float | None, scale: float, digits: int) -> str:
    return "-" if value is None else f"{value / scale:.{digits}f}"
