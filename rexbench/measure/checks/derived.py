"""What a record says about itself once measured: its summary (statistics of the samples, achieved
GFLOP/s, the drift-anchor ratio, stalls, contention) and its warnings (stalls, noise, too many
threads, unfolded BatchNorm, GPU slowdown, recompilations, preparation notes, contention)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rexbench.measure.backends.cudagraphs import uses_cudagraphs
from rexbench.measure.checks.validity import warnings as validity_warnings
from rexbench.measure.machine import contention
from rexbench.records.schema import Record
from rexbench.stats import NOISE_THRESHOLD, summarize

# A sample over STALL_FACTOR x the median is a stall, not noise: on this project's 2-core machines a
# competing process made 2-thread runs 60x slower (each OpenMP barrier waiting out a time slice)
# while a 1-thread anchor was barely affected. STALL_WARN of such samples earns a warning.
STALL_FACTOR = 3
STALL_WARN = 0.01


def derived(
    record: Record, notes: Sequence[str] = (), bn_remaining: int = 0
) -> tuple[dict[str, Any], list[str]]:
    """The summary (stats.Summary fields, gflops_per_s, anchor ratio, stalled_fraction) and the
    warnings (stalls, noise, unfolded BatchNorm, GPU slowdown, recompilations, preparation notes)
    of a record."""
    assert record.timing is not None
    batch = int(record.run.config.get("batch_size", 1))
    summary = summarize(record.timing.samples_ns, batch)
    data = asdict(summary)
    macs = record.counts.get("macs_conv")
    data["gflops_per_s"] = (
        2 * macs * batch / summary.median if macs and summary.median > 0 else None
    )
    anchor_ns = record.timing.anchor_ns
    anchor_median = summarize(anchor_ns).median if anchor_ns else None
    data["anchor_median"] = anchor_median
    data["median_over_anchor"] = summary.median / anchor_median if anchor_median else None
    slow = sum(v > STALL_FACTOR * summary.median for v in record.timing.samples_ns)
    data["stalled_fraction"] = slow / summary.n
    data["contention"] = contention.summarize(record.timing.contention)
    warnings = []
    if data["stalled_fraction"] >= STALL_WARN:
        warnings.append(
            f"contended: {data['stalled_fraction']:.1%} of the samples took over {STALL_FACTOR}x the "
            "median (another process competing for the cores? multi-threaded runs suffer most); "
            "re-run on a quiet machine"
        )
    if summary.noisy:
        warnings.append(
            f"noisy: IQR/median = {summary.noise:.1%} > {NOISE_THRESHOLD:.0%}; "
            "other load on the machine? compare configurations measured together"
        )
    warnings += _oversubscribed(record)
    if record.run.config.get("fold_bn") and bn_remaining:
        warnings.append(f"{bn_remaining} BatchNorm layer(s) could not be folded")
    config = record.run.config
    cudagraphs = uses_cudagraphs(config.get("compile_mode"), str(config.get("device", "cpu")))
    warnings += validity_warnings(
        record.timing.validity, cudagraphs and bool(config.get("compile"))
    )
    warnings += list(notes)
    if data["contention"].get("contended"):
        warnings.append(
            f"machine contended: {contention.describe(data['contention'])}; a gate does not judge "
            "such a run: re-run it on a quiet machine"
        )
    return data, warnings


def _oversubscribed(record: Record) -> list[str]:
    """A warning when the run used more torch threads than the machine has usable cores."""
    threads = (record.timing.backend if record.timing else {}).get("threads")
    cores = (record.env.get("cpu") or {}).get("usable_cores")
    if not (isinstance(threads, int) and isinstance(cores, int)) or threads <= cores:
        return []
    return [
        f"oversubscribed: {threads} torch threads on {cores} usable core(s); the extra threads "
        f"wait for a core and the times say little about this model (use --threads {cores} or fewer)"
    ]
