"""Does rexbench's median agree with independent timers on the same prepared model, in the same
process? Each timer is an `Arm` that times n calls; the arms run interleaved in small rounds (the
order rotated every round) so that drift of the machine hits all of them alike.

* rexbench: the timing loop of rexbench.measure.timing.loop (CUDA events around each call, then a
  synchronize; perf_counter_ns on a CPU), as `profile` runs it.
* torch.utils.benchmark.Timer: `timeit(1)` per sample, so that both medians are medians of single
  calls; its timer synchronizes the device before reading the clock (torch.utils.benchmark docs).
* triton.testing.do_bench, when triton is installed and the device is a GPU: CUDA events around
  each call with its 256 MB L2 flush in between, so it is compared with rexbench's own timing with
  the L2 flushed (rexbench.measure.timing.l2flush), not with the warm-cache number.

torch and triton are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rexbench.errors import first_line
from rexbench.measure.timing.devices import DeviceOps
from rexbench.measure.timing.loop import Runner, measure_interleaved

TOLERANCE = 0.03  # medians within 3%


@dataclass
class Arm:
    """One timer: `chunk(n)` times about n calls and returns their times in ns. `reference` names the
    arm it is compared with (None: it is a reference)."""

    name: str
    chunk: Callable[[int], list[float]]
    reference: str | None = None


@dataclass(frozen=True)
class Agreement:
    arm: str
    reference: str
    median_ns: float
    reference_ns: float
    n: int
    tolerance: float = TOLERANCE

    @property
    def ratio(self) -> float:
        """reference median / this arm's median (rexbench over the other timer)."""
        return self.reference_ns / self.median_ns

    @property
    def agrees(self) -> bool:
        return abs(self.ratio - 1) <= self.tolerance

    def text(self) -> str:
        return (
            f"{self.reference} {self.reference_ns / 1e6:.3f} ms vs {self.arm} "
            f"{self.median_ns / 1e6:.3f} ms: ratio {self.ratio:.4f} ({self.ratio - 1:+.2%}; "
            f"within {self.tolerance:.0%}: {'yes' if self.agrees else 'NO'}; n={self.n})"
        )


def rexbench_arm(
    run: Callable[[], Any], ops: DeviceOps, flush: Callable[[], None] | None = None
) -> Arm:
    """rexbench's timing loop on `run` (with the L2 flush before each call when given)."""
    name = "rexbench+l2flush" if flush is not None else "rexbench"

    def chunk(n: int) -> list[float]:
        runner = Runner(name, run, before_call=flush)
        return list(measure_interleaved([runner], n, 0, ops=ops)[0].samples_ns)

    return Arm(name, chunk)


def timer_arm(run: Callable[[], Any], threads: int | None = None) -> Arm:
    """torch.utils.benchmark.Timer, one call per `timeit`, under inference mode."""
    import torch
    from torch.utils.benchmark import Timer

    timer = Timer(
        stmt="run()", globals={"run": run}, num_threads=threads or torch.get_num_threads()
    )

    def chunk(n: int) -> list[float]:
        with torch.inference_mode():
            return [timer.timeit(1).median * 1e9 for _ in range(n)]

    return Arm("torch.utils.benchmark.Timer", chunk, reference="rexbench")


def do_bench_arm(run: Callable[[], Any], estimate_ms: float) -> Arm | str:
    """triton.testing.do_bench (its L2 flush included), about n calls per chunk; or why not."""
    try:
        from triton.testing import do_bench
    except Exception as exc:  # ImportError, or a triton that cannot load here
        return f"triton not usable: {first_line(exc)}"
    import torch

    def chunk(n: int) -> list[float]:
        rep = max(1.0, n * estimate_ms)
        with torch.inference_mode():
            try:
                times = do_bench(run, warmup=1, rep=rep, return_mode="all")
            except (TypeError, ValueError, AssertionError):  # a triton without return_mode="all"
                times = [do_bench(run, warmup=1, rep=rep, return_mode="median")]
        return [float(t) * 1e6 for t in np.atleast_1d(times)]

    return Arm("triton.testing.do_bench", chunk, reference="rexbench+l2flush")


def interleave(arms: Sequence[Arm], rounds: int, per_round: int) -> dict[str, list[float]]:
    """Every arm's samples: `rounds` rounds of `per_round` calls each, round r starting with arm
    r mod k."""
    samples: dict[str, list[float]] = {arm.name: [] for arm in arms}
    for r in range(rounds):
        for k in range(len(arms)):
            arm = arms[(r + k) % len(arms)]
            samples[arm.name] += arm.chunk(per_round)
    return samples


def agreements(
    arms: Sequence[Arm], samples: dict[str, list[float]], tolerance: float = TOLERANCE
) -> list[Agreement]:
    """Each arm with a reference, compared with it by median."""
    out = []
    for arm in arms:
        if arm.reference is None or not samples.get(arm.name) or not samples.get(arm.reference):
            continue
        out.append(
            Agreement(
                arm=arm.name,
                reference=arm.reference,
                median_ns=float(np.median(samples[arm.name])),
                reference_ns=float(np.median(samples[arm.reference])),
                n=len(samples[arm.name]),
                tolerance=tolerance,
            )
        )
    return out
