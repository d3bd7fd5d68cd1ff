"""The deploy snippet checked: run once in a fresh process (rexbench.tune.deploy writes it), its
median compared with tune's own figure for the winner. Within 5% confirms it; on a busy machine
it may not be, which is said with the ratio rather than treated as a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rexbench.measure.run.rounds import first_line

TOLERANCE = 0.05
START_S = 10.0  # a fresh interpreter importing torch and the runtime, on a busy 2-core machine


@dataclass(frozen=True)
class Verification:
    """The snippet's run: its median and runs, tune's median, their ratio (snippet / tune), and
    whether it is within TOLERANCE; or the error that stopped it."""

    path: str
    runs: int
    tune_ms: float
    median_ms: float | None = None
    ratio: float | None = None
    within: bool | None = None
    error: str | None = None

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
        return (
            f"deploy snippet {self.path}: median {self.median_ms:.3f} ms in a fresh process, "
            f"{self.ratio:.3f} x tune's {self.tune_ms:.3f} ms: {verdict}"
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
