"""`rexbench sweep`: profile a named set of the paper's models (or given models) with one configuration."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexbench.cli.common import InputShapeOpt, JsonOpt, ResolutionOpt, console, print_json
from rexbench.cli.profile import (
    BatchOpt,
    ChannelsLastOpt,
    CompileModeOpt,
    CompileOpt,
    ConfigOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    OutOpt,
    RunsOpt,
    ThreadsOpt,
    WarmupOpt,
    build_configs,
)

if TYPE_CHECKING:
    from rexbench.measure.profile import ProfileEvent
    from rexbench.measure.sweep import PlanItem, SweepResult

NamesArg = Annotated[
    list[str],
    typer.Argument(
        help="Sets (table5, tableA1, tableA2, mobile, all) and/or model names.", show_default=False
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option("--force", help="Measure again models already measured with this configuration."),
]
KeepGoingOpt = Annotated[
    bool,
    typer.Option(
        "--keep-going", help="Go on with the next model when one fails (exit 1 at the end)."
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would be measured and skipped.")
]


def sweep(
    names: NamesArg,
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
    out: OutOpt = Path("results"),
    force: ForceOpt = False,
    keep_going: KeepGoingOpt = False,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Profile a set of the paper's models (table5, tableA1, tableA2, mobile, all) with one configuration.

    Resumable: a model already in --out with the identical configuration is skipped (--force measures it again). Ctrl-C keeps every finished model (exit 130).
    """
    from rexbench.measure import sweep as sw
    from rexbench.measure.profile import with_input_shape

    specs = sw.expand(names)
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
    # the shape is part of each config (and of its config_id) before the plan looks for records
    configs = [with_input_shape(c, input_shape) for c in configs]
    err = console(stderr=True)
    if not dry_run:  # a device or dtype this machine cannot run fails once, before any model
        from rexbench.measure.prepare import check_dtype, resolve_device

        for c in configs:
            check_dtype(resolve_device(c.device), c.dtype)
    items = sw.plan(specs, configs, out, force=force)
    todo = [i for i in items if i.todo]
    skipped = [f"{i.spec} ({', '.join(r.run.label for r in i.done)})" for i in items if i.done]
    err.print(f"sweep of {len(specs)} model(s); {note}", highlight=False)
    if skipped:
        err.print(
            f"skipping {len(skipped)} already measured in {out} (--force to measure again): "
            + ", ".join(skipped),
            highlight=False,
        )
    if dry_run:
        data = {
            "models": specs,
            "measure": [i.spec for i in todo],
            "skip": [i.spec for i in items if i.done and not i.todo],
        }
        if json_out:
            print_json(data)
        else:
            console().print(
                f"would measure {len(todo)}: {', '.join(data['measure']) or '-'}",
                highlight=False,
                soft_wrap=True,
            )
        return
    view = SweepView(err, len(todo), len(configs) + 1, runs, warmup)
    with view:
        result = sw.run(
            items,
            out,
            keep_going=keep_going,
            on_model=view.next_model,
            runs=runs,
            warmup=warmup,
            input_shape=input_shape,
            progress=view.update,
        )
    _finish(result, out, json_out, err)


def _finish(result: SweepResult, out: Path, json_out: bool, err: Any) -> None:
    data = result.to_dict()
    if json_out:
        print_json(data)
    else:
        _table(data)
    for model, error in result.failed:
        err.print(f"failed: {model}: {error}", markup=False)
    if result.interrupted:
        err.print(
            f"interrupted: {len(result.paths)} finished record(s) kept in {out}; run the same command "
            "again to resume",
            highlight=False,
        )
        raise typer.Exit(130)
    err.print(
        f"next: rexbench report {out} --out {out}/report   and   rexbench plot {out} --out {out}/figure3.png",
        highlight=False,
        markup=False,
    )
    if result.failed:
        raise typer.Exit(1)


def _table(data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="rexbench sweep", title_justify="left")
    for name in ("model", "config", "median ms", "status"):
        table.add_column(name, justify="right" if name == "median ms" else "left", no_wrap=True)
    for status in ("measured", "skipped"):
        for row in data[status]:
            median = "-" if row["median_ms"] is None else f"{row['median_ms']:.3f}"
            table.add_row(row["model"], row["config"], median, status)
    for row in data["failed"]:
        table.add_row(row["model"], "-", "-", "failed")
    console().print(table)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class SweepView:
    """Two Rich progress lines on stderr: the whole sweep (models done, elapsed, ETA) and the
    current model's phase. Redrawn only from the profile callbacks, between timing chunks, at most
    twice a second: no render thread competes with the timed code."""

    INTERVAL_S = 0.5

    def __init__(self, err: Any, models: int, runners: int, runs: int, warmup: int) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            console=err,
            auto_refresh=False,
            transient=True,
        )
        self.overall = self.progress.add_task("sweep", total=max(models, 1), status="")
        self.current = self.progress.add_task("", total=None, status="")
        self.models, self.per_model = models, (runs + warmup) * runners
        self.index, self.calls, self.start, self.last = 0, {}, time.monotonic(), 0.0

    def __enter__(self) -> SweepView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def eta(self, fraction_done: float) -> str:
        """Elapsed and remaining time, the remaining time from the mean time per model so far."""
        elapsed = time.monotonic() - self.start
        if fraction_done <= 0:
            return f"{_duration(elapsed)} elapsed, ETA -:--:--"
        remaining = elapsed / fraction_done * (self.models - fraction_done)
        return f"{_duration(elapsed)} elapsed, ETA {_duration(remaining)}"

    def next_model(self, index: int, item: PlanItem) -> None:
        self.index, self.calls = index, {}
        self._show(item.spec, "building", 0.0, force=True)

    def update(self, event: ProfileEvent) -> None:
        if event.phase in ("warmup", "timing"):
            self.calls[f"{event.phase}:{event.item}"] = event.done
        fraction = min(1.0, sum(self.calls.values()) / self.per_model) if self.per_model else 0.0
        what = f"{event.phase} {event.item}" if event.item else event.phase
        self._show(event.model, what, fraction, force=event.phase not in ("warmup", "timing"))

    def _show(self, model: str, what: str, fraction: float, force: bool) -> None:
        done = self.index + fraction
        self.progress.update(self.overall, completed=done,
                             description=f"model {self.index + 1}/{self.models}", status=self.eta(done))  # fmt: skip
        self.progress.update(self.current, description=f"{model}: {what}", status="")
        now = time.monotonic()
        if force or now - self.last >= self.INTERVAL_S:
            self.last = now
            self.progress.refresh()
