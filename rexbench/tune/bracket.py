"""The winner timed again by rexbench right around the deploy snippet's run, the way the snippet
times it, so that the snippet's check compares like with like.

tune's own figure for the winner comes from interleaved rounds (chunks of calls alternating with
the drift anchor and the other finalists), minutes before the snippet runs, and the snippet times
one plain loop. On a 2-vCPU virtual machine each of the two differences moves a figure by more
than 5% (docs/tune.md). So the winner is prepared once more in a worker process of its own (its
threads and allocator in its environment, as in the search) and timed in one plain loop of the
snippet's warm-up and runs right before the snippet and again right after it; the snippet's median
is judged against the mean of the two, which cancels a drift that is linear over the three runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from rexbench.measure.run.workers import Isolation, Worker, WorkerPool
from rexbench.spec import parse
from rexbench.tune.space import Candidate

T = TypeVar("T")

WARMUP = 20  # the snippet's warm-up calls (rexbench.tune.deploy)


@dataclass(frozen=True)
class Loops:
    """The winner's median in rexbench's worker right before and right after the snippet (ms)."""

    before_ms: float
    after_ms: float


@dataclass(frozen=True)
class Winner:
    """What the worker prepares: the model, the winning candidate, its input shape (C, H, W),
    the weights (None: random), the timed calls of each loop, the worker's timeout in seconds."""

    spec: str
    candidate: Candidate
    shape: tuple[int, ...]
    weights: str | None
    runs: int
    timeout: float


def around(winner: Winner, between: Callable[[], T]) -> tuple[T, Loops | str]:
    """`between()` (the snippet's run) with the winner timed in a plain loop in a rexbench worker
    right before and right after it: its result, and the two loops or the one line saying why the
    worker could not time them (then `between` still runs, unbracketed)."""
    config = winner.candidate.config
    isolation = Isolation(allocator=winner.candidate.allocator, timeout=winner.timeout)
    spec = parse(winner.spec)
    with WorkerPool(isolation) as pool:
        worker = pool.start(spec, config.label, int(config.threads or 1))
        reason = worker.setup(spec, config, winner.shape, winner.weights)
        before = None if reason is not None else _loop(worker, winner.runs)
        result = between()
        after = None if before is None else _loop(worker, winner.runs)
    if before is None or after is None:
        fault = worker.fault.reason if worker.fault is not None else None
        return result, f"rexbench's worker could not time it again: {reason or fault}"
    return result, Loops(before, after)


def _loop(worker: Worker, runs: int) -> float | None:
    """The worker's median over `runs` calls after WARMUP, in one loop each (ms); None if it failed."""
    worker.warmup(WARMUP)
    samples = worker.chunk(runs, "timing")
    return statistics.median(samples) / 1e6 if samples else None
