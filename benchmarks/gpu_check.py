"""The GPU check: one command that shows, in minutes, whether rexbench measures right on a GPU.

    python benchmarks/gpu_check.py --out results/gpu-check --budget-s 420

1. Profiles the Table 5 models at batch 64 with compile_cl, and rexnet_x2.0 also with eager, max,
   fp16, bf16 and CUDA graphs (200 timed calls each, interleaved with the drift anchor); writes the
   records under OUT/records/<machine-id>/.
2. Checks every record: NVML readings before, per round and after (a slowdown by power or
   temperature is marked: WARN), no recompilation after the first call, CUDA graphs replayed.
3. Checks the output of every configuration against eager fp32 (fp16/bf16 with their own limits).
4. Checks rexbench's median of rexnet_x2.0 (compile_cl) against torch.utils.benchmark.Timer and,
   where triton is installed, triton.testing.do_bench, on the same prepared model: within 3%.
5. Renders Figure 3 (its GPU panel from these records) and the paper-vs-measured report into
   OUT/report/, writes OUT/checks.json and OUT/summary.txt, prints one summary table.

Exit status: 0 every check that ran passed (WARN and SKIP rows included), 1 a check failed, 2 no CUDA
(or a usage error). A hard time budget (--budget-s) is kept: a model that would not fit is skipped
and says so; past the budget plus a grace period the process dumps its stacks and exits (never
hangs). --dry-run runs the same code on the CPU with small sizes (a few minutes here, most of it
torch.compile), without judging CPU timings.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DRY_MODELS = ("rexnet_x2.0", "efficientnet_b0")
GRACE_S = 150  # past the budget: a compile already started may finish, then the hard stop
REPORT = "Figure 3 + paper vs measured"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="output folder")
    parser.add_argument("--budget-s", type=float, default=420.0, help="overall time budget (s)")
    parser.add_argument("--dry-run", action="store_true", help="the whole path on the CPU, small")
    parser.add_argument("--models", nargs="+", default=None, help="default: the Table 5 models")
    parser.add_argument(
        "--headline",
        default="rexnet_x2.0",
        help="the model checked under every configuration and against the timers",
    )
    parser.add_argument("--runs", type=int, default=None, help="timed calls (default 200; dry 20)")
    parser.add_argument(
        "--warmup", type=int, default=None, help="warm-up calls (default 20; dry 2)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="default 64 (dry run 2)")
    parser.add_argument("--resolution", type=int, default=None, help="default: the model's own")
    parser.add_argument("--flush-l2", action="store_true", help="flush the L2 before each call")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace, headline: str):  # noqa: ANN201
    from rexbench.gpucheck.settings import CheckSettings

    asked = {
        "runs": args.runs,
        "warmup": args.warmup,
        "batch_size": args.batch_size,
        "resolution": args.resolution,
    }
    given = {k: v for k, v in asked.items() if v is not None}
    common = {"out_dir": args.out / "records", "headline": headline, **given}
    if args.dry_run:
        return CheckSettings.dry(**common)
    return CheckSettings(flush_l2=args.flush_l2, **common)


def model_list(args: argparse.Namespace) -> tuple[list[str], str]:
    """Canonical specs, the headline model first; the headline's canonical spec."""
    from rexbench.measure.run.sweep import expand
    from rexbench.spec import parse

    headline = str(parse(args.headline))
    names = args.models or (list(DRY_MODELS) if args.dry_run else ["table5"])
    specs = expand(names)
    if headline in specs:
        specs.remove(headline)
        specs.insert(0, headline)
    return specs, headline


def no_cuda_line() -> str | None:
    """The one line saying why there is no GPU to check, or None when there is one."""
    import torch

    if torch.cuda.is_available():
        return None
    build = "a CPU-only build" if torch.version.cuda is None else "no visible GPU"
    return (
        f"gpu_check: CUDA is not available (torch {torch.__version__}, {build}): nothing to "
        "check here; --dry-run runs the check's code path on the CPU"
    )


class Budget:
    """Seconds left; whether a model is expected to fit (its configs x the seconds per config seen)."""

    def __init__(self, total_s: float, clock=time.monotonic) -> None:  # noqa: ANN001
        self.total_s, self.clock, self.start = total_s, clock, clock()
        self.per_config: list[float] = []

    @property
    def deadline(self) -> float:
        """The clock's value at which the budget is spent."""
        return self.start + self.total_s

    def used(self) -> float:
        return self.clock() - self.start

    def fits(self, configs: int) -> bool:
        estimate = configs * max(self.per_config, default=0.0)
        return self.used() + estimate <= self.total_s

    def spent(self, seconds: float, configs: int) -> None:
        self.per_config.append(seconds / max(1, configs))


def run_models(
    specs: list[str],
    settings,
    budget: Budget,
    out: Path,
    *,
    parts,  # noqa: ANN001
) -> tuple[list, list]:
    """check_model for every model that fits the budget; SKIP rows for the rest. parts: what the
    check measures with (rexbench.gpucheck.check.CheckParts)."""
    from rexbench.gpucheck.check import check_model
    from rexbench.gpucheck.rows import SKIP, CheckRow
    from rexbench.gpucheck.settings import configs_for

    records, rows = [], []
    for spec in specs:
        n = len(configs_for(spec, settings))
        if not budget.fits(n):
            why = f"budget: {budget.used():.0f} s used of {budget.total_s:.0f} s"
            rows.append(CheckRow("model", spec, SKIP, why))
            print(f"[{budget.used():5.0f} s] {spec}: skipped ({why})", file=sys.stderr, flush=True)
            continue
        print(f"[{budget.used():5.0f} s] {spec}: {n} configuration(s)", file=sys.stderr, flush=True)
        result = check_model(spec, settings, parts=parts, deadline=budget.deadline)
        budget.spent(result.seconds, n)
        records += result.records
        rows += result.rows
        for row in result.rows:
            line = f"    {row.status:4}  {row.check:15} {row.subject}: {row.detail}"
            print(line, file=sys.stderr, flush=True)
        write_checks(out, rows, {"partial": True})
    return records, rows


def report_rows(records: list, out: Path, dry_run: bool) -> list:
    """Paper vs measured (report.md, report.html) and Figure 3 with its GPU panel, into OUT/report."""
    from rexbench.errors import first_line
    from rexbench.gpucheck.rows import FAIL, PASS, SKIP, WARN, CheckRow
    from rexbench.report import paper
    from rexbench.report.figure3 import NothingToPlot, figure3, summary

    if not records:
        return [CheckRow("report", REPORT, SKIP, "no records")]
    shown = [r for r in records if r.run.label == "compile_cl" and r.dtype == "fp32"]
    published = any(r.model.top1 is not None for r in shown or records)
    try:
        doc = paper.build(records, sources=[str(out / "records")])
        written = paper.write(doc, out / "report", shown or records)
        panels = summary(figure3(shown or records))["panels"]
    except NothingToPlot as exc:  # only models with a published top-1 are plotted (not py: tests)
        return [CheckRow("report", REPORT, FAIL if published else WARN, first_line(exc))]
    except Exception as exc:
        return [CheckRow("report", REPORT, FAIL, first_line(exc))]
    panel = 1 if dry_run else 2  # a dry run has CPU records: its CPU panel is the one drawn
    lines = panels[panel]["lines"]
    status = PASS if lines else (FAIL if published else WARN)
    what = f"{panels[panel]['title']}: {len(lines)} line(s) ({', '.join(lines)})"
    files = ", ".join(str(p.relative_to(out)) for p in written.values())  # OUT-relative
    return [CheckRow("report", REPORT, status, f"{what}; {files}")]


def write_checks(out: Path, rows: list, extra: dict[str, Any]) -> Path:
    from rexbench.records.store import atomic_write_text

    data = {**extra, "rows": [r.to_dict() for r in rows]}
    return atomic_write_text(out / "checks.json", json.dumps(data, indent=2) + "\n")


def summary_table(rows: list, title: str):  # noqa: ANN201
    from rich.table import Table

    colour = {"PASS": "green", "FAIL": "bold red", "WARN": "yellow", "SKIP": "dim"}
    table = Table(title=title, show_lines=False, title_justify="left")
    for name in ("status", "check", "subject", "detail"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(f"[{colour[row.status]}]{row.status}[/]", row.check, row.subject, row.detail)
    return table


def main(argv: list[str] | None = None, *, parts=None) -> int:  # noqa: ANN001
    """The command; parts: what the check measures with (rexbench.gpucheck.check.CheckParts;
    None: the real ones; the tests pass a fake GPU's)."""
    args = parse_args(argv)
    if not args.dry_run:
        line = no_cuda_line()
        if line:
            print(line)
            return 2
    from rich.console import Console

    from rexbench.cli.common import print_tables
    from rexbench.errors import RexbenchError
    from rexbench.gpucheck.check import REAL_CHECK
    from rexbench.gpucheck.rows import FAIL

    budget = Budget(args.budget_s)
    try:
        specs, headline = model_list(args)
        settings = settings_from(args, headline)
        check_out(args.out)
    except RexbenchError as exc:
        print(f"gpu_check: error: {exc}")
        return 2
    watchdog(args.budget_s + GRACE_S)
    try:
        records, rows = run_models(specs, settings, budget, args.out, parts=parts or REAL_CHECK)
        rows += report_rows(records, args.out, args.dry_run)
    finally:
        faulthandler.cancel_dump_traceback_later()
    counts = {s: sum(r.status == s for r in rows) for s in ("PASS", "FAIL", "WARN", "SKIP")}
    mode = (
        "dry run on the CPU"
        if args.dry_run
        else f"batch {settings.batch_size} on {settings.device}"
    )
    title = f"GPU check ({mode}): {len(records)} record(s) in {budget.used():.0f} s"
    table = summary_table(rows, title)
    print_tables(table)  # as the CLI: the page's width (a pipe: 80), else one block per row
    args.out.mkdir(parents=True, exist_ok=True)  # also when nothing was measured
    with (args.out / "summary.txt").open("w") as fh:
        Console(file=fh, width=200, no_color=True).print(table)
    ending = {
        "partial": False,
        "settings": _jsonable(settings),
        "counts": counts,
        "elapsed_s": budget.used(),
        "budget_s": args.budget_s,
    }
    write_checks(args.out, rows, ending)
    verdict = "FAILED" if counts[FAIL] else "passed"
    print(
        f"gpu check {verdict}: {counts['PASS']} passed, {counts['FAIL']} failed, "
        f"{counts['WARN']} warnings, {counts['SKIP']} skipped; {budget.used():.0f} s of "
        f"{args.budget_s:.0f} s; records and report in {args.out}"
    )
    return 1 if counts[FAIL] else 0


def watchdog(seconds: float) -> None:
    """Past `seconds`, dump every thread's stack to stderr and exit (faulthandler): never hang."""
    try:
        faulthandler.dump_traceback_later(seconds, exit=True, file=sys.__stderr__)
    except (AttributeError, ValueError, OSError) as exc:  # no real stderr (embedded, captured)
        line = f"gpu_check: no watchdog ({exc}); the budget is kept between models only"
        print(line, file=sys.stderr)


def check_out(out: Path) -> None:
    from rexbench.measure.machine import env as envmod
    from rexbench.records.store import check_writable, machine_dir

    check_writable(machine_dir(out / "records", envmod.machine_id()))


def _jsonable(settings) -> dict[str, Any]:  # noqa: ANN001
    from dataclasses import asdict

    data = asdict(settings)
    data["out_dir"] = "records"  # relative to --out: no machine paths in the results
    return data


if __name__ == "__main__":
    raise SystemExit(main())
