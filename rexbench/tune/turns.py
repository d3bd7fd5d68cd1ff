"""The winner timed again by rexbench in turns with the deploy snippet's run, so that the snippet's
check compares like with like.

tune's own figure for the winner comes from its rounds, minutes before the snippet runs, where the
winner's chunks alternate with the drift anchor and the other finalists. On a 2-vCPU virtual
machine the speed moves by 20-50% between two loops of a few seconds (docs/tune.md), so a figure
from another moment says little about the snippet. So the winner is prepared once more in a worker
process of its own (its threads and allocator in its environment, as in the search, its graph from
the search's cache), warmed up, and then its calls and the snippet's are timed in turns: the
snippet makes its timed calls in parts, and before each part, and after the last, the worker times
as many calls (rexbench.tune.verify). The snippet's median is judged against the median of the
worker's calls.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from rexbench.measure.run.workers import Isolation, Worker, WorkerPool
from rexbench.spec import parse
from rexbench.tune.deploy import WARMUP  # the snippet's warm-up calls, as the worker's
from rexbench.tune.space import Candidate

T = TypeVar("T")


@dataclass(frozen=True)
class Winner:
    """What the worker prepares: the model, the winning candidate, its input shape (C, H, W),
    the weights (None: random), the calls of each turn, the worker's timeout in seconds."""

    spec: str
    candidate: Candidate
    shape: tuple[int, ...]
    weights: str | None
    calls: int
    timeout: float


@dataclass
class Turns:
    """The worker's timed calls, one turn at a time (`take`); `failed` once a turn got none."""

    worker: Worker
    calls: int
    samples: list[int] = field(default_factory=list)
    taken: int = 0
    failed: bool = False

    def take(self) -> None:
        got = [] if self.failed else self.worker.chunk(self.calls, "timing")
        self.failed = self.failed or not got
        self.samples += got
        self.taken += 1

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) / 1e6


def in_turns(
    winner: Winner, check: Callable[[Callable[[], None] | None], T]
) -> tuple[T, Turns | str]:
    """check(turn): the snippet's run, calling turn() before each of its parts; turn times the
    winner's calls in a rexbench worker, once more after the check. Returns the check's result,
    and the turns or the one line saying why the worker could not take them (the check then runs
    without turns)."""
    config = winner.candidate.config
    isolation = Isolation(allocator=winner.candidate.allocator, timeout=winner.timeout)
    spec = parse(winner.spec)
    with WorkerPool(isolation) as pool:
        worker = pool.start(spec, config.label, int(config.threads or 1))
        reason = worker.setup(spec, config, winner.shape, winner.weights)
        if reason is None and worker.fault is None:
            worker.warmup(WARMUP)
        if reason is not None or worker.fault is not None:
            why = reason or (worker.fault.reason if worker.fault else "")
            return check(None), f"rexbench's worker could not time it again: {why}"
        turns = Turns(worker, winner.calls)
        result = check(turns.take)
        turns.take()
    if turns.failed:
        why = worker.fault.reason if worker.fault is not None else "a turn timed no calls"
        return result, f"rexbench's worker stopped timing it: {why}"
    return result, turns
