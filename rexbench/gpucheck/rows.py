"""What every step of the GPU check ends in: one `CheckRow` with its status."""

from __future__ import annotations

from dataclasses import dataclass

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"


@dataclass(frozen=True)
class CheckRow:
    check: str  # "prepare", "profile", "gpu state", "recompiles", "cudagraphs", "parity", ...
    subject: str  # "rexnet_x2.0 compile_cl"
    status: str  # PASS, FAIL, WARN or SKIP
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "subject": self.subject, "status": self.status,
                "detail": self.detail}  # fmt: skip
