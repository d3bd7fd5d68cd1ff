"""`rexbench profile`: latency of models under one or more configurations, as records (rexbench.measure.profile)."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexbench.cli.common import (
    InputShapeOpt,
    JsonOpt,
    ModelsArg,
    ResolutionOpt,
    WeightsOpt,
    console,
    print_json,
)
from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    from rich.table import Table

    from rexbench.measure.config import RunConfig
    from rexbench.measure.profile import ProfileEvent
    from rexbench.records.schema import Record


class Dtype(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class CompileMode(str, Enum):  # rexbench.measure.config.COMPILE_MODES
    default = "default"
    reduce_overhead = "reduce-overhead"
    max_autotune = "max-autotune"
    max_autotune_no_cudagraphs = "max-autotune-no-cudagraphs"


PRESET_HELP = "eager, channels_last, compile, compile_cl (default), max (BN folded + freezing)"

DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        "-b",
        help="Images per call (default 1 on CPU, 64 on CUDA, as in the paper).",
        show_default=False,
    ),
]
RunsOpt = Annotated[int, typer.Option("--runs", help="Timed calls per configuration.")]
WarmupOpt = Annotated[int, typer.Option("--warmup", help="Untimed calls per configuration first.")]
DtypeOpt = Annotated[Dtype, typer.Option("--dtype", help="Weights and input dtype.")]
ChannelsLastOpt = Annotated[
    bool | None,
    typer.Option(
        "--channels-last/--no-channels-last",
        help="NHWC memory format (default: on).",
        show_default=False,
    ),
]
CompileOpt = Annotated[
    bool | None,
    typer.Option("--compile/--no-compile", help="torch.compile (default: on).", show_default=False),
]
CompileModeOpt = Annotated[
    CompileMode | None,
    typer.Option("--compile-mode", help="torch.compile mode.", show_default=False),
]
ConfigOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--config",
        "-c",
        help=f"Named configuration(s) to measure interleaved, repeatable or comma-separated: {PRESET_HELP}.",
        show_default=False,
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", help="torch threads (default: torch's setting).", show_default=False),
]
OutOpt = Annotated[
    Path, typer.Option("--out", help="Folder for the records (results/<machine-id>/).")
]


def profile(
    models: ModelsArg,
    device: DeviceOpt = "cpu",
    batch_size: BatchOpt = None,
    runs: RunsOpt = 1000,
    warmup: WarmupOpt = 20,
    resolution: ResolutionOpt = None,
    input_shape: InputShapeOpt = None,
    dtype: DtypeOpt = Dtype.fp32,
    channels_last: ChannelsLastOpt = None,
    compile: CompileOpt = None,
    compile_mode: CompileModeOpt = None,
    config: ConfigOpt = None,
    threads: ThreadsOpt = None,
    weights: WeightsOpt = None,
    out: OutOpt = Path("results"),
    json_out: JsonOpt = False,
) -> None:
    """Time models on this machine (median, p90, CI, throughput, GFLOP/s) and store one record each.

    Several configurations (--config eager,compile_cl,max) are measured interleaved, so machine drift hits all alike; the table shows each one's speedup over the first.
    """
    from rexbench.measure.profile import profile_models

    configs, note = build_configs(
        device=device,
        batch_size=batch_size,
        runs=runs,
        warmup=warmup,
        resolution=resolution,
        dtype=dtype.value,
        channels_last=channels_last,
        compile=compile,
        compile_mode=compile_mode.value if compile_mode else None,
        names=config,
        threads=threads,
    )
    err = console(stderr=True)
    err.print(note, highlight=False)
    kept: list[Path] = []
    view = ProgressView(err, len(configs) + 1, runs, warmup)

    def saved(record: Record, path: Path | None) -> None:
        if path is not None:
            kept.append(path)

    try:
        with view:
            records = profile_models(
                models,
                configs,
                weights=weights,
                input_shape=input_shape,
                out_dir=out,
                progress=view.update,
                on_record=saved,
            )
    except KeyboardInterrupt:
        where = f" in {kept[0].parent}" if kept else ""
        err.print(f"interrupted: {len(kept)} finished record(s) kept{where}", highlight=False)
        raise typer.Exit(130) from None
    data = table_data(records, kept, note)
    if json_out:
        print_json(data)
        return
    _print(render(data))
    for row in data["rows"]:
        for warning in row["warnings"]:
            err.print(
                f"[yellow]warning[/]: {row['model']} {row['config']}: {warning}", highlight=False
            )
    if kept:
        err.print(f"{len(kept)} record(s) written to {kept[0].parent}", highlight=False)


def build_configs(
    *,
    device: str,
    batch_size: int | None,
    runs: int,
    warmup: int,
    resolution: int | None,
    dtype: str,
    channels_last: bool | None,
    compile: bool | None,
    compile_mode: str | None,
    names: list[str] | None,
    threads: int | None,
) -> tuple[list[RunConfig], str]:
    """The RunConfigs the options describe, and a line saying which and why (the defaults)."""
    from rexbench.measure.config import DEFAULT_PRESET, PRESETS, RunConfig, default_batch_size

    RunConfig(device=device)  # an unknown device is refused before anything else
    common: dict[str, Any] = dict(
        device=device,
        batch_size=batch_size if batch_size is not None else default_batch_size(device),
        resolution=resolution,
        dtype=dtype,
        threads=threads,
        runs=runs,
        warmup=warmup,
    )
    wanted = [n.strip() for text in names or [] for n in text.split(",") if n.strip()]
    if names is not None and not wanted:
        raise RexbenchError(f"--config needs a configuration name: {PRESET_HELP}")
    if wanted:
        if channels_last is not None or compile is not None:
            raise RexbenchError(
                "--config names whole configurations: drop --channels-last/--compile, or drop --config"
            )
        configs = [RunConfig.preset(name, **common) for name in dict.fromkeys(wanted)]
        note = "configurations " + ", ".join(c.label for c in configs) + " (measured interleaved)"
    else:
        fields = dict(PRESETS[DEFAULT_PRESET])
        if channels_last is not None:
            fields["channels_last"] = channels_last
        if compile is not None:
            fields["compile"] = compile
        configs = [RunConfig(**fields, **common)]
        what = []
        what.append("torch.compile" if configs[0].compile else "eager (no torch.compile)")
        what.append("channels-last" if configs[0].channels_last else "NCHW (no channels-last)")
        default = channels_last is None and compile is None
        note = f"configuration {configs[0].label}: {' + '.join(what)}" + (
            " (the default; compare with --config eager,compile_cl,max)" if default else ""
        )
    if compile_mode is not None:
        if not any(c.compile for c in configs):
            raise RexbenchError("--compile-mode needs a compiled configuration (drop --no-compile)")
        from dataclasses import replace

        configs = [replace(c, compile_mode=compile_mode) if c.compile else c for c in configs]
    where = f"batch {common['batch_size']} on {device}"
    return configs, f"{note}; {where}"


# -------------------------------------------------------------------------------------- output


def table_data(records: list[Record], paths: list[Path], note: str = "") -> dict[str, Any]:
    """What the table shows and --json prints: one row per record, times in milliseconds."""
    from rexbench.measure.profile import MACS_CONVENTION

    rows = []
    first: dict[str, float] = {}
    several = len({r.run.config_id for r in records}) > 1
    for i, record in enumerate(records):
        s, t, config = record.summary, record.timing, record.run.config
        first.setdefault(record.model.spec, s["median"])
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
                "median_ms": s["median"] / 1e6,
                "p90_ms": s["p90"] / 1e6,
                "ci_low_ms": s["ci_low"] / 1e6,
                "ci_high_ms": s["ci_high"] / 1e6,
                "throughput": s["throughput"],
                "params": record.counts.get("params"),
                "macs_conv": record.counts.get("macs_conv"),
                "gflops_per_s": s.get("gflops_per_s"),
                "noise": s["noise"],
                "noisy": s["noisy"],
                "speedup": first[record.model.spec] / s["median"] if several else None,
                "compile_s": t.compile_s if t else None,
                "anchor_median_ms": s["anchor_median"] / 1e6 if s.get("anchor_median") else None,
                "warnings": list(record.warnings),
                "record": str(paths[i]) if i < len(paths) else None,
            }
        )
    return {"note": note, "conventions": MACS_CONVENTION, "rows": rows}


def render(data: dict[str, Any]) -> Table:
    from rich.table import Table

    rows = data["rows"]
    several = any(r["speedup"] is not None for r in rows)
    table = Table(title="rexbench profile", caption=data["conventions"])
    for name in (
        "model",
        "config",
        "batch",
        "median ms",
        "p90 ms",
        "95% CI ms",
        "img/s",
        "params M",
        "macs_conv G",
        "GFLOP/s",
        "IQR/med",
        "compile s",
    ):
        table.add_column(
            name, justify="left" if name in ("model", "config") else "right", no_wrap=True
        )
    if several:
        table.add_column("speedup", justify="right", no_wrap=True)
    for r in rows:
        noise = f"{r['noise']:.1%}" + (" ⚠" if r["noisy"] else "")
        cells = [
            r["model"],
            r["config"],
            str(r["batch"]),
            f"{r['median_ms']:.3f}",
            f"{r['p90_ms']:.3f}",
            f"{r['ci_low_ms']:.3f}-{r['ci_high_ms']:.3f}",
            f"{r['throughput']:.1f}",
            _fmt(r["params"], 1e6, 3),
            _fmt(r["macs_conv"], 1e9, 4),
            _fmt(r["gflops_per_s"], 1, 1),
            f"[yellow]{noise}[/]" if r["noisy"] else noise,
            "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}",
        ]
        if several:
            cells.append("-" if r["speedup"] is None else f"{r['speedup']:.2f}x")
        table.add_row(*cells)
    return table


def _fmt(value: float | None, scale: float, digits: int) -> str:
    return "-" if value is None else f"{value / scale:.{digits}f}"


def _print(table: Table) -> None:
    """Print on stdout; when it is not a terminal, widen the page so no column is cut."""
    from rich.measure import Measurement

    out = console()
    if not out.is_terminal:
        out.width = max(
            out.width, Measurement.get(out, out.options.update_width(10**5), table).maximum
        )
    out.print(table)


class ProgressView:
    """A Rich progress bar on stderr that never refreshes on its own (no render thread competing
    with the timed code): it is redrawn from the progress callback, between chunks, at most twice
    a second."""

    INTERVAL_S = 0.5

    def __init__(self, err: Any, runners: int, runs: int, warmup: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            auto_refresh=False,
            transient=True,
        )
        self.task = self.progress.add_task("starting", total=None)
        self.runners, self.runs, self.warmup = runners, runs, warmup
        self.done: dict[str, int] = {}
        self.last = 0.0

    def __enter__(self) -> ProgressView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, event: ProfileEvent) -> None:
        if event.phase in ("warmup", "timing"):
            key = f"{event.phase}:{event.item}"
            self.done[key] = event.done
            total = (self.warmup if event.phase == "warmup" else self.runs) * self.runners
            done = sum(v for k, v in self.done.items() if k.startswith(event.phase))
            self.progress.update(
                self.task, description=f"{event.model}: {event.phase}", total=total, completed=done
            )
        else:
            self.done = {}
            label = {
                "build": "building",
                "count": "counting",
                "prepare": "preparing",
                "record": "saved",
            }
            what = f" {event.item}" if event.item else ""
            self.progress.update(
                self.task,
                description=f"{event.model}: {label.get(event.phase, event.phase)}{what}",
                total=None,
                completed=0,
            )
        now = time.monotonic()
        if now - self.last >= self.INTERVAL_S or event.phase not in ("warmup", "timing"):
            self.last = now
            self.progress.refresh()
