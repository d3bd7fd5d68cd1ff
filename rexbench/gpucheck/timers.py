"""The GPU check's timer agreement: rexbench's median of the headline model's compile_cl
configuration against independent timers on the same prepared model, in the same process
(rexbench.measure.timing.agreement), as CheckRows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rexbench.errors import first_line
from rexbench.gpucheck.rows import FAIL, PASS, SKIP, WARN, CheckRow
from rexbench.measure.run.rounds import PreparedConfig
from rexbench.measure.timing.devices import DeviceOps
from rexbench.measure.timing.loop import backend_settings

if TYPE_CHECKING:
    from rexbench.gpucheck.settings import CheckSettings
    from rexbench.measure.timing.agreement import Arm
    from rexbench.records.schema import Record

#: (prepared headline configuration, its DeviceOps, settings) -> (timer arms, rows of arms left out)
ArmsFn = Callable[[PreparedConfig, DeviceOps, "CheckSettings"], "tuple[list[Arm], list[CheckRow]]"]


def default_arms(
    item: PreparedConfig, ops: DeviceOps, settings: CheckSettings
) -> tuple[list[Arm], list[CheckRow]]:
    """rexbench and torch.utils.benchmark.Timer; on a GPU also rexbench with the L2 flushed and
    triton.testing.do_bench (which flushes it), or a SKIP row saying why not."""
    from rexbench.measure.timing import agreement as agree

    run, subject = item.prepared.run, f"{settings.headline} {item.config.label}"
    arms = [agree.rexbench_arm(run, ops), agree.timer_arm(run, item.backend.get("threads"))]
    versus = f"{subject} vs triton.testing.do_bench"
    if not item.prepared.device.startswith("cuda"):
        return arms, [CheckRow("timer agreement", versus, SKIP, "needs a GPU")]
    estimate_ms = float(sorted(arms[0].chunk(5))[2]) / 1e6
    bench = agree.do_bench_arm(run, estimate_ms)
    if isinstance(bench, str):
        return arms, [CheckRow("timer agreement", versus, SKIP, bench)]
    from rexbench.measure.timing.l2flush import make_flusher

    flushed = agree.rexbench_arm(run, ops, make_flusher(item.prepared.device))
    return [*arms, flushed, bench], []


def agreement_rows(
    items: Sequence[PreparedConfig],
    records: Sequence[Record],
    ops: DeviceOps,
    settings: CheckSettings,
    arms_fn: ArmsFn,
) -> list[CheckRow]:
    """rexbench's median of the headline compile_cl configuration against independent timers,
    timed on `ops` (the DeviceOps its records were timed with)."""
    from rexbench.measure.timing import agreement as agree

    item = next((i for i in items if i.config.label == "compile_cl"), None)
    subject = f"{settings.headline} compile_cl"
    if item is None:
        return [CheckRow("timer agreement", subject, SKIP, "compile_cl was not prepared")]
    config = item.config
    try:
        with backend_settings(item.backend["threads"], config.cudnn_benchmark, config.allow_tf32):
            arms, rows = arms_fn(item, ops, settings)
            samples = agree.interleave(
                arms, settings.agreement_rounds, settings.agreement_per_round
            )
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        return [CheckRow("timer agreement", subject, FAIL, first_line(exc))]
    recorded = next((r for r in records if r.run.config_id == config.config_id), None)
    note = f"; the record's median {recorded.latency.median_ms:.3f} ms" if recorded else ""
    if settings.dry_run:
        note += " (a dry run: CPU timings on this machine are not judged)"
    for result in agree.agreements(arms, samples):
        ok = PASS if result.agrees else (WARN if settings.dry_run else FAIL)
        rows.append(
            CheckRow("timer agreement", f"{subject} vs {result.arm}", ok, result.text() + note)
        )
    return rows
