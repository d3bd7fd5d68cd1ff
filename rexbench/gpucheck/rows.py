"""What every step of the GPU check ends in: one `CheckRow` with its status; and the rows one record
gives (written, GPU state, recompilations, CUDA graphs, output check)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rexbench.records.schema import Record

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"


@dataclass(frozen=True)
class CheckRow:
    check: str  # "prepare", "profile", "gpu state", "recompiles", "cudagraphs", "parity", ...
    subject: str  # "rexnet_x2.0 compile_cl"
    status: str  # PASS, FAIL, WARN or SKIP
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "subject": self.subject,
            "status": self.status,
            "detail": self.detail,
        }


def record_rows(record: Record) -> list[CheckRow]:
    """The record written, and what its validity says (see rexbench.measure.checks.validity)."""
    from rexbench.measure.checks.validity import recompiled_of

    subject = f"{record.model.spec} {record.run.label}"
    lat = record.latency
    assert lat is not None
    cudnn = "on" if record.run.config.get("cudnn_benchmark") else "off"
    written = (
        f"median {lat.median_ms:.3f} ms [{lat.ci_low_ms:.3f}, {lat.ci_high_ms:.3f}], "
        f"{lat.throughput:.0f} img/s, n={lat.n}, cuDNN benchmark {cudnn}"
    )
    rows = [CheckRow("profile", subject, PASS, written)]
    validity = record.timing.validity if record.timing else {}
    if validity.get("gpu") is not None:
        rows.append(_gpu_row(subject, validity["gpu"]))
    if "recompiles" in validity:
        n = recompiled_of(record)
        detail = f"{n} graph(s) compiled after the first call"
        rows.append(CheckRow("recompiles", subject, FAIL if n else PASS, detail))
    graphs = (record.timing.preparation if record.timing else {}).get("cudagraphs")
    if graphs is not None:
        status = {True: PASS, False: FAIL, None: WARN}[graphs.get("recorded")]
        detail = (
            f"replay seen after {graphs['warmup_calls']} warm-up call(s) (states "
            f"{graphs.get('states')}); {graphs.get('cudagraph_skips', 0)} graph(s) skipped"
        )
        rows.append(CheckRow("cudagraphs", subject, status, detail))
    return rows


def _gpu_row(subject: str, gpu: dict) -> CheckRow:
    """NVML's readings through the run: no slowdown (PASS), a slowdown or no readings (WARN)."""
    from rexbench.measure.machine.gpu_state import clock_range, slowdown

    reasons, clocks = slowdown(gpu), clock_range(gpu)
    if gpu.get("error"):
        return CheckRow("gpu state", subject, WARN, f"no NVML readings: {gpu['error']}")
    if reasons:
        return CheckRow("gpu state", subject, WARN, "slowdown: " + "; ".join(reasons))
    used = gpu.get("functions") or {}
    span = f"SM clock {clocks[0]}-{clocks[1]} MHz, " if clocks else ""
    span += f"via {used.get('reasons')} and {used.get('temperature')}, "
    readings = len(gpu.get("samples", []))
    return CheckRow("gpu state", subject, PASS, f"{span}{readings} readings, no slowdown")


def parity_row(record: Record) -> CheckRow:
    """The record's output check against eager fp32 (rexbench.measure.checks.parity, the check
    every record carries), read as the report and Figure 3 read it: an invalid record fails."""
    subject = f"{record.model.spec} {record.run.label}"
    limit = (record.parity.get("tolerance") or {}).get("rel_l2")
    detail = record.parity_text + (f"; limit {limit:g} for {record.dtype}" if limit else "")
    return CheckRow("parity", subject, PASS if record.parity.get("valid") else FAIL, detail)
