"""The deploy snippet checked: run once in a fresh process (rexbench.tune.deploy writes it), its
median compared with tune's own figure for the winner. Within 5% confirms it; on a busy machine
it may not be, which is said with the ratio rather than treated as a failure.

The machine's speed moves between tune's final rounds and the snippet's run (a hypervisor moving
two vCPUs between core complexes moves a 2-thread model by 20-30% within minutes, docs/gate.md),
so the drift anchor that was timed in those rounds (rexbench.measure.timing.anchor) is timed again
here, right before and right after the snippet, at the same threads: the snippet's ratio divided
by the anchor's (now / then) is what is judged, as the gate compares a model with its baseline.
The raw ratio is kept beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rexbench.measure.run.rounds import first_line
from rexbench.measure.timing.anchor import Anchor, make_anchor

AnchorMaker = Callable[[str, int | None], Anchor]  # (device, threads), as in Parts

TOLERANCE = 0.05
START_S = 10.0  # a fresh interpreter importing torch and the runtime, on a busy 2-core machine
# the anchor's timed calls before and after the snippet (2.8-9 ms each at 2 threads here)
ANCHOR_CALLS = 200
ANCHOR_WARMUP = 20


@dataclass(frozen=True)
class Verification:
    """The snippet's run: its median and runs, tune's median, their ratio (snippet / tune), and
    whether it is within TOLERANCE; or the error that stopped it. With the drift anchor's median
    in tune's rounds and around the snippet (`anchor_ms`, `anchor_now_ms`), `drift` is their ratio
    and `anchored` the snippet's ratio divided by it, which `within` then judges."""

    path: str
    runs: int
    tune_ms: float
    median_ms: float | None = None
    ratio: float | None = None
    within: bool | None = None
    error: str | None = None
    anchor_ms: float | None = None
    anchor_now_ms: float | None = None
    drift: float | None = None
    anchored: float | None = None

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
        if self.anchored is None or self.drift is None:
            return f"{head}: {verdict}"
        return (
            f"{head}; the drift anchor ran {self.drift:.3f} x its time in tune's rounds, so "
            f"{self.anchored:.3f} x with the drift taken out: {verdict}"
        )

    def with_anchor(self, then_ms: float, now_ms: float) -> Verification:
        """The check judged against the drift anchor: `then_ms` in tune's rounds, `now_ms` around
        the snippet's run."""
        if self.ratio is None:
            return self
        drift = now_ms / then_ms
        anchored = self.ratio / drift
        return replace(
            self,
            anchor_ms=then_ms,
            anchor_now_ms=now_ms,
            drift=drift,
            anchored=anchored,
            within=abs(anchored - 1) <= TOLERANCE,
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


def anchor_ms(threads: int, calls: int = ANCHOR_CALLS, make: AnchorMaker = make_anchor) -> float:
    """The CPU drift anchor's median in milliseconds at `threads` threads, timed in this process
    as tune's rounds time it (after ANCHOR_WARMUP calls), `make` building it as the search's
    parts did; torch's thread count is restored."""
    import statistics
    import time

    import torch

    from rexbench.measure.timing.devices import device_ops
    from rexbench.measure.timing.loop import time_calls

    before = torch.get_num_threads()
    anchor = make("cpu", threads)
    ops = device_ops("cpu")
    try:
        anchor.setup()
        with torch.inference_mode():
            time_calls(anchor.fn, ANCHOR_WARMUP, ops, time.perf_counter_ns)
            samples = time_calls(anchor.fn, calls, ops, time.perf_counter_ns)
    finally:
        torch.set_num_threads(before)
    return statistics.median(samples) / 1e6


def run_anchored(
    path: Path,
    runs: int,
    tune_ms: float,
    timeout: float,
    anchor: tuple[float, int] | None,
    make: AnchorMaker = make_anchor,
) -> Verification:
    """`run_snippet`, with the drift anchor (tune's median in seconds, its threads; built by
    `make`) timed right before and right after it and the check judged against it; as it is
    without an anchor."""
    if anchor is None:
        return run_snippet(path, runs, tune_ms, timeout)
    then_s, threads = anchor
    first = anchor_ms(threads, make=make)
    checked = run_snippet(path, runs, tune_ms, timeout)
    if checked.error is not None:
        return checked
    return checked.with_anchor(then_s * 1e3, (first + anchor_ms(threads, make=make)) / 2)


def runs_for(call_s: float, seconds: float = 10.0) -> int:
    """Timed calls for the snippet's run: about `seconds` of them, from 20 to 200."""
    return max(20, min(200, int(seconds / call_s) if call_s > 0 else 200))
