"""Progress on stderr, drawn with Rich between timing chunks (no render thread competes with the
timed code): one bar for `profile`, two lines for `sweep`, and the gate library's `Hooks`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rexbench.measure.profile import ProfileEvent
    from rexbench.measure.sweep import PlanItem

_TIMED = ("warmup", "timing")
_LABELS = {"build": "building", "count": "counting", "prepare": "preparing", "record": "saved"}
View = TypeVar("View", bound="_LiveView")


class _LiveView:
    """Rich progress lines on stderr that never refresh on their own: they are redrawn from the
    progress callback, between chunks, at most twice a second (or at once when forced)."""

    INTERVAL_S = 0.5

    def __init__(self, err: Any, *columns: Any) -> None:
        from rich.progress import Progress

        self.progress = Progress(*columns, console=err, auto_refresh=False, transient=True)
        self.last = 0.0

    def __enter__(self: View) -> View:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def redraw(self, force: bool) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.INTERVAL_S:
            self.last = now
            self.progress.refresh()


class ProgressView(_LiveView):
    """One progress bar: the model being profiled, its phase and the timed calls done."""

    def __init__(self, err: Any, runners: int, runs: int, warmup: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

        super().__init__(err, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        self.task = self.progress.add_task("starting", total=None)
        self.runners, self.runs, self.warmup = runners, runs, warmup
        self.done: dict[str, int] = {}

    def update(self, event: ProfileEvent) -> None:
        if event.phase in _TIMED:
            self.done[f"{event.phase}:{event.item}"] = event.done
            total = (self.warmup if event.phase == "warmup" else self.runs) * self.runners
            done = sum(v for k, v in self.done.items() if k.startswith(event.phase))
            self.progress.update(
                self.task, description=f"{event.model}: {event.phase}", total=total, completed=done
            )
        else:
            self.done = {}
            what = f" {event.item}" if event.item else ""
            phase = _LABELS.get(event.phase, event.phase)
            self.progress.update(
                self.task, description=f"{event.model}: {phase}{what}", total=None, completed=0
            )
        self.redraw(force=event.phase not in _TIMED)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class SweepView(_LiveView):
    """Two lines: the whole sweep (models done, elapsed, ETA) and the current model's phase."""

    def __init__(self, err: Any, models: int, runners: int, runs: int, warmup: int) -> None:
        from rich.progress import BarColumn, TextColumn

        super().__init__(
            err, TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}")
        )
        self.overall = self.progress.add_task("sweep", total=max(models, 1), status="")
        self.current = self.progress.add_task("", total=None, status="")
        self.models, self.per_model = models, (runs + warmup) * runners
        self.index, self.calls, self.start = 0, {}, time.monotonic()

    def eta(self, fraction_done: float) -> str:
        """Elapsed and remaining time, the remaining time from the mean time per model so far."""
        elapsed = time.monotonic() - self.start
        if fraction_done <= 0:
            return f"{_duration(elapsed)} elapsed, ETA -:--:--"
        remaining = elapsed / fraction_done * (self.models - fraction_done)
        return f"{_duration(elapsed)} elapsed, ETA {_duration(remaining)}"

    def next_model(self, index: int, item: PlanItem) -> None:
        self.index, self.calls = index, {}
        self._show(item.spec, "building", 0.0, force=True)

    def update(self, event: ProfileEvent) -> None:
        if event.phase in _TIMED:
            self.calls[f"{event.phase}:{event.item}"] = event.done
        fraction = min(1.0, sum(self.calls.values()) / self.per_model) if self.per_model else 0.0
        what = f"{event.phase} {event.item}" if event.item else event.phase
        self._show(event.model, what, fraction, force=event.phase not in _TIMED)

    def _show(self, model: str, what: str, fraction: float, force: bool) -> None:
        done = self.index + fraction
        self.progress.update(self.overall, completed=done,
                             description=f"model {self.index + 1}/{self.models}", status=self.eta(done))  # fmt: skip
        self.progress.update(self.current, description=f"{model}: {what}", status="")
        self.redraw(force)


class ConsoleHooks:
    """The library's progress hooks (rexbench.gate.run.Hooks) on a stderr console: notes as lines,
    counting as a spinner, timing as a ProgressView."""

    def __init__(self, err: Any) -> None:
        self.err = err

    def note(self, text: str) -> None:
        self.err.print(text, highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def counting(self) -> Iterator[Callable[[str], None]]:
        with self.err.status("counting") as status:
            yield lambda spec: status.update(f"counting {spec}")

    @contextlib.contextmanager
    def measuring(self, runners: int, runs: int, warmup: int) -> Iterator[Callable[[Any], None]]:
        with ProgressView(self.err, runners, runs, warmup) as view:
            yield view.update
