"""What the search found for each candidate: where it got to, its last measurement (median and 95%
CI of the call, from the record of the last rung it was timed in), its fidelity and output check,
and its status in one word or line. Plain data; rexbench.tune.search fills it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.measure.checks.fidelity import Fidelity
from rexbench.tune.space import Candidate

if TYPE_CHECKING:
    from rexbench.records.schema import Record

# statuses, from the best outcome to none at all
WINNER = "winner"
FINALIST = "finalist"
DROPPED = "dropped"  # timed, then not among the better half of a rung
BELOW = "below"  # its top-1 agreement is below --min-agreement
INVALID = "invalid"  # its output differs from the eager fp32 model's
FAILED = "failed"  # it could not be prepared, or its worker failed
UNSCREENED = "not screened"  # the budget ended, or Ctrl-C came, before its turn
STOPPED = "stopped by the budget"  # went on from its rung, but the budget ended before its turn
TIMED = "timed"  # timed with a valid output in its last rung; the search decides what follows


@dataclass
class Result:
    """One candidate's outcome. rung: the last rung it was timed in (None: never); median_s and
    the CI: seconds per call; reason: why it failed, is invalid or was not screened."""

    candidate: Candidate
    status: str = UNSCREENED
    rung: int | None = None
    runs: int = 0
    median_s: float | None = None
    ci_low_s: float | None = None
    ci_high_s: float | None = None
    valid: bool | None = None
    fidelity: Fidelity | str | None = None
    reason: str | None = None
    record: Path | None = None
    prepare_s: float | None = None
    shape: tuple[int, ...] | None = None  # (C, H, W) it was measured at
    preparation: dict[str, Any] | None = None  # what the record says its backend did

    @property
    def name(self) -> str:
        return self.candidate.name

    @property
    def per_image_s(self) -> float | None:
        """Seconds per image: the throughput objective's cost."""
        batch = self.candidate.config.batch_size
        return None if self.median_s is None else self.median_s / batch

    def cost(self, objective: str) -> float | None:
        """What the objective minimises: seconds per call (latency) or per image (throughput)."""
        return self.median_s if objective == "latency" else self.per_image_s

    @property
    def agreement(self) -> float | None:
        return self.fidelity.top1_agreement if isinstance(self.fidelity, Fidelity) else None

    def measured(self, record: Record, rung: int) -> None:
        """Take the figures of a record of `rung`: TIMED, INVALID (its output differs from eager
        fp32's) or FAILED (no sample: its worker failed first)."""
        self.rung, self.runs = rung, len(record.timing.samples_ns) if record.timing else 0
        self.prepare_s = record.timing.compile_s if record.timing else None
        self.preparation = record.timing.preparation if record.timing else None
        self.shape = tuple(record.counts.get("input_shape") or ())[1:] or None
        summary = record.summary or {}
        if summary.get("median") is None:
            self.status = FAILED
            self.reason = record.parity.get("reason") or "no sample was taken"
            return
        self.median_s = summary["median"] / 1e9
        self.ci_low_s, self.ci_high_s = summary["ci_low"] / 1e9, summary["ci_high"] / 1e9
        self.valid = record.valid
        self.status, self.reason = (TIMED, None) if record.valid else (INVALID, record.parity_text)

    def to_dict(self, objective: str) -> dict[str, Any]:
        """A row of `--json`: times in milliseconds."""
        c = self.candidate.config
        fid = self.fidelity
        return {
            "candidate": self.name,
            "config": c.label,
            "dtype": c.dtype,
            "threads": c.threads,
            "allocator": self.candidate.allocator,
            "batch": c.batch_size,
            "config_id": c.config_id,
            "status": self.status,
            "rung": self.rung,
            "runs": self.runs,
            "median_ms": _ms(self.median_s),
            "ci_low_ms": _ms(self.ci_low_s),
            "ci_high_ms": _ms(self.ci_high_s),
            "images_per_s": None if self.per_image_s is None else 1 / self.per_image_s,
            "valid": self.valid,
            "fidelity": fid.to_dict() if isinstance(fid, Fidelity) else None,
            "reason": self.reason
            if self.reason is not None
            else (fid if isinstance(fid, str) else None),
            "record": None if self.record is None else str(self.record),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3
