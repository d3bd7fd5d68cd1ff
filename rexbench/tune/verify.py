"""The deploy snippet checked: run once in a fresh process (rexbench.tune.deploy writes it), its
median compared with rexbench's own figure for the winner. Within 5% confirms it; on a busy machine
it may not be, which is said with the ratio rather than treated as a failure.

The figure it is judged against is the winner timed again by rexbench in a plain loop right
before and right after the snippet (rexbench.tune.bracket): tune's rounds time it in interleaved
chunks, minutes earlier, and both differences move a 2-vCPU machine's figure by more than 5%. The
ratio to tune's own figure from its rounds is kept beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rexbench.measure.run.rounds import first_line

TOLERANCE = 0.05
START_S = 10.0  # a fresh interpreter importing torch and the runtime, on a busy 2-core machine


@dataclass(frozen=True)
class Verification:
    """The snippet's run: its median and runs, tune's median, their ratio (snippet / tune), and
    whether it is within TOLERANCE; or the error that stopped it. With rexbench's plain loops of the
    winner right before and after the snippet (`rexbench_before_ms`, `rexbench_after_ms`),
    `bracketed` is the snippet's median over their mean, which `within` then judges; `unbracketed`
    says why there are no such loops."""

    path: str
    runs: int
    tune_ms: float
    median_ms: float | None = None
    ratio: float | None = None
    within: bool | None = None
    error: str | None = None
    rexbench_before_ms: float | None = None
    rexbench_after_ms: float | None = None
    bracketed: float | None = None
    unbracketed: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def line(self) -> str:
        if self.error is not None:
            return f"the deploy snippet {self.path} did not run: {self.error}"
        assert self.median_ms is not None and self.ratio is not None
        verdict = (
            "confirmed (within 5%)"
            if self.within
            else "not within 5% (a busy machine moves both figures; run it again when quiet)"
        )
        head = (
            f"deploy snippet {self.path}: median {self.median_ms:.3f} ms in a fresh process, "
            f"{self.ratio:.3f} x tune's {self.tune_ms:.3f} ms"
        )
        if self.bracketed is None or self.rexbench_ms is None:
            why = f" ({self.unbracketed})" if self.unbracketed else ""
            return f"{head}{why}: {verdict}"
        return (
            f"{head}; rexbench's worker timed it the same way right before and after: "
            f"{self.rexbench_before_ms:.3f} and {self.rexbench_after_ms:.3f} ms, so "
            f"{self.bracketed:.3f} x: {verdict}"
        )

    @property
    def rexbench_ms(self) -> float | None:
        """The mean of rexbench's two loops around the snippet."""
        if self.rexbench_before_ms is None or self.rexbench_after_ms is None:
            return None
        return (self.rexbench_before_ms + self.rexbench_after_ms) / 2

    def with_loops(self, before_ms: float, after_ms: float) -> Verification:
        """The check judged against rexbench's loops of the winner right before and after it."""
        if self.median_ms is None:
            return self
        bracketed = self.median_ms / ((before_ms + after_ms) / 2)
        return replace(
            self,
            rexbench_before_ms=before_ms,
            rexbench_after_ms=after_ms,
            bracketed=bracketed,
            within=abs(bracketed - 1) <= TOLERANCE,
        )


def run_snippet(path: Path, runs: int, tune_ms: float, timeout: float) -> Verification:
    """Run the file with `runs` timed calls in a fresh interpreter that imports this rexbench."""
    import rexbench

    root = str(Path(rexbench.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.pop("REXBENCH_SNIPPET_ENV", None)
    try:
        done = subprocess.run(
            [sys.executable, str(path), str(runs)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Verification(str(path), runs, tune_ms, error=f"it ran past {timeout:.0f} s")
    except OSError as exc:
        return Verification(str(path), runs, tune_ms, error=first_line(exc))
    try:
        median = float(json.loads(done.stdout.strip().splitlines()[-1])["median_ms"])
    except (ValueError, KeyError, IndexError, TypeError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Verification(str(path), runs, tune_ms, error=f"exit {done.returncode}: {tail}")
    ratio = median / tune_ms
    return Verification(
        str(path), runs, tune_ms, median_ms=median, ratio=ratio, within=abs(ratio - 1) <= TOLERANCE
    )


def runs_for(call_s: float, seconds: float = 10.0) -> int:
    """Timed calls for the snippet's run: about `seconds` of them, from 20 to 200."""
    return max(20, min(200, int(seconds / call_s) if call_s > 0 else 200))
