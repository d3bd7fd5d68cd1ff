"""The deploy snippet checked: run once in a fresh process (rexbench.tune.deploy writes it), its
median compared with rexbench's own figure for the winner. Within 5% confirms it; on a busy machine
it may not be, which is said with the ratio rather than treated as a failure.

The figure it is judged against is the winner timed again by rexbench in turns with the snippet
(rexbench.tune.turns): the snippet makes its timed calls in PARTS parts, each after a line on its
stdin, and a rexbench worker times as many calls of the winner before each part and after the
last. tune's rounds timed it minutes earlier, and a 2-vCPU machine's speed moves by more than 5%
within seconds. The ratio to tune's own figure from its rounds is kept beside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rexbench.measure.run.rounds import first_line

TOLERANCE = 0.05
PARTS = 10  # the snippet's timed calls in this many parts, in turns with rexbench's own
START_S = 10.0  # a fresh interpreter importing torch and the runtime, on a busy 2-core machine


@dataclass(frozen=True)
class Verification:
    """The snippet's run: its median and runs, tune's median, their ratio (snippet / tune), and
    whether it is within TOLERANCE; or the error that stopped it. With rexbench's own calls of the
    winner timed in `turns` turns with the snippet's (`rexbench_ms`, their median), `side_by_side` is
    the snippet's median over it, which `within` then judges; `no_turns` says why there are no
    such calls."""

    path: str
    runs: int
    tune_ms: float
    median_ms: float | None = None
    ratio: float | None = None
    within: bool | None = None
    error: str | None = None
    rexbench_ms: float | None = None
    turns: int | None = None
    side_by_side: float | None = None
    no_turns: str | None = None

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
        if self.side_by_side is None or self.rexbench_ms is None:
            why = f" ({self.no_turns})" if self.no_turns else ""
            return f"{head}{why}: {verdict}"
        return (
            f"{head}; rexbench's worker timed it in turns with the snippet ({self.turns} turns): "
            f"{self.rexbench_ms:.3f} ms, so {self.side_by_side:.3f} x: {verdict}"
        )

    def with_turns(self, rexbench_ms: float, turns: int) -> Verification:
        """The check judged against rexbench's own calls, timed in `turns` turns with the snippet's."""
        if self.median_ms is None:
            return self
        side_by_side = self.median_ms / rexbench_ms
        return replace(
            self,
            rexbench_ms=rexbench_ms,
            turns=turns,
            side_by_side=side_by_side,
            within=abs(side_by_side - 1) <= TOLERANCE,
        )


def run_snippet(
    path: Path,
    runs: int,
    tune_ms: float,
    timeout: float,
    turn: Callable[[], None] | None = None,
) -> Verification:
    """Run the file with `runs` timed calls in a fresh interpreter that imports this rexbench.
    With `turn`, its calls are made in PARTS parts, and turn() (rexbench's own calls) runs before
    each part while the snippet waits."""
    import rexbench

    root = str(Path(rexbench.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.pop("REXBENCH_SNIPPET_ENV", None)
    env["REXBENCH_PARTS"] = str(PARTS if turn is not None else 1)
    try:
        code, out, err = _in_turns([sys.executable, str(path), str(runs)], env, timeout, turn)
    except TimeoutError:
        return Verification(str(path), runs, tune_ms, error=f"it ran past {timeout:.0f} s")
    except OSError as exc:
        return Verification(str(path), runs, tune_ms, error=first_line(exc))
    try:
        median = float(json.loads(out.strip().splitlines()[-1])["median_ms"])
    except (ValueError, KeyError, IndexError, TypeError):
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return Verification(str(path), runs, tune_ms, error=f"exit {code}: {tail}")
    ratio = median / tune_ms
    return Verification(
        str(path), runs, tune_ms, median_ms=median, ratio=ratio, within=abs(ratio - 1) <= TOLERANCE
    )


def _in_turns(
    command: list[str], env: dict[str, str], timeout: float, turn: Callable[[], None] | None
) -> tuple[int, str, str]:
    """Run `command`; at each line "ready" on its stdout, call turn() and answer with a line.
    Returns its exit code, the rest of its stdout, its stderr; TimeoutError (it was killed) past
    `timeout` seconds."""
    expired = threading.Event()
    with tempfile.TemporaryFile(mode="w+") as err:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env
        )
        assert process.stdin is not None and process.stdout is not None
        timer = threading.Timer(timeout, lambda: (expired.set(), process.kill()))
        timer.start()
        out = []
        try:
            for line in process.stdout:
                if turn is None or line.strip() != "ready":
                    out.append(line)
                    continue
                turn()
                with contextlib.suppress(BrokenPipeError):  # it died meanwhile: its exit says why
                    process.stdin.write("go\n")
                    process.stdin.flush()
            process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        if expired.is_set():
            raise TimeoutError
        err.seek(0)
        return process.returncode, "".join(out), err.read()


MAX_RUNS = 1000  # 200 calls of an 8 ms model read 0.86-1.13 x beside rexbench's, 1000 0.995-1.046


def runs_for(call_s: float, seconds: float = 10.0) -> int:
    """Timed calls for the snippet's run: about `seconds` of them, from 20 to MAX_RUNS (five
    checks each way, benchmarks/snippet_check.py, docs/tune.md)."""
    return max(20, min(MAX_RUNS, int(seconds / call_s) if call_s > 0 else MAX_RUNS))
