"""Measuring a model now like its baselines (`measure_like`), and what a caller shows meanwhile
(`Hooks`; `Quiet` shows nothing). Used by a gate run (rexbench.gate.run) and a baseline save."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from rexbench.measure.run.workers import Isolation
    from rexbench.records.schema import Record


class Hooks(Protocol):
    """What a caller shows while a gate or a baseline save works (the CLI draws it with Rich)."""

    def note(self, text: str) -> None:
        """A line worth telling: what is measured now, with which configurations."""

    def counting(self) -> AbstractContextManager[Callable[[str], None]]:
        """A span of counting; its callback takes the spec counted next."""

    def measuring(
        self, runners: int, runs: int, warmup: int
    ) -> AbstractContextManager[Callable[[Any], None]]:
        """A span of timing `runners` (configurations + the drift anchor) `warmup` then `runs`
        times each; its callback takes the profile's progress events."""


class Quiet:
    """Hooks that show nothing."""

    def note(self, text: str) -> None:
        pass

    @contextlib.contextmanager
    def counting(self) -> Iterator[Callable[[str], None]]:
        yield lambda spec: None

    @contextlib.contextmanager
    def measuring(self, runners: int, runs: int, warmup: int) -> Iterator[Callable[[Any], None]]:
        yield lambda event: None


def measure_like(
    spec: str,
    baselines: Sequence[Record],
    *,
    runs: int | None = None,
    warmup: int | None = None,
    hooks: Hooks | None = None,
    abort: bool = False,
    isolation: Isolation | None = None,
) -> list[Record]:
    """Profile `spec` now with the run configurations of its baseline records (interleaved with the
    drift anchor, nothing written). runs/warmup: override (default: the baselines' own, the largest
    when they differ). abort: stop a run certain to end contended (`contention.ContendedRun`).
    isolation: worker processes or not (rexbench.measure.run.workers; None: its default)."""
    from rexbench.measure.config import RunConfig
    from rexbench.measure.run.profile import profile_models

    configs = list({b.run.config_id: RunConfig.from_dict(b.run.config) for b in baselines}.values())
    runs = runs or max(int(b.run.config.get("runs", 1)) for b in baselines)
    if warmup is None:
        warmup = max(int(b.run.config.get("warmup", 0)) for b in baselines)
    with (hooks or Quiet()).measuring(len(configs) + 1, runs, warmup) as progress:
        return profile_models(
            [spec],
            configs,
            runs=runs,
            warmup=warmup,
            progress=progress,
            abort_when_contended=abort,
            isolation=isolation,
        )
