"""Progress on stderr, drawn with Rich: one line for `profile` (the phase, its live elapsed time and,
while timing, the calls done), two for `sweep` (models done, elapsed and an ETA that includes
building and compiling), and the gate library's `Hooks`.

While a model is built, counted, prepared (torch.compile compiles here), exported or warmed up, a
small thread redraws the line twice a second so the elapsed time moves. When timing starts the
thread is stopped (it waits on an event, it does not even wake up), and the line is redrawn only
from the progress callback, which the timing loop calls between rounds: nothing draws while a timed
call runs. Nothing is drawn when stderr is not a terminal (a log gets no half-drawn bars).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rich.progress import Task
    from rich.text import Text

    from rexbench.measure.run.profile import ProfileEvent
    from rexbench.measure.run.sweep import Batch

_TIMED = "timing"
_LABELS = {
    "build": "building",
    "count": "counting",
    "prepare": "preparing",
    "export": "exporting",
    "warmup": "warming up",
    "record": "saving",
}
View = TypeVar("View", bound="LiveView")
BAR_WIDTH = 10


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _calls_column() -> Any:
    """ "1,230/4,000 calls" while timing; else the task's status field (a sweep's ETA), if any."""
    from rich.progress import ProgressColumn
    from rich.table import Column
    from rich.text import Text

    class Calls(ProgressColumn):
        def render(self, task: Task) -> Text:
            if task.total is None:
                return Text(str(task.fields.get("status", "")))
            return Text(f"{int(task.completed):,}/{int(task.total):,} calls")

    return Calls(table_column=Column(no_wrap=True))


def line_columns(*middle: Any) -> list[Any]:
    """A progress line that fits any page (80 columns included): the description takes the room
    left and is cut with an ellipsis, the bar is short, and `middle` (the calls) and the clock keep
    their whole width - they are never cut or wrapped."""
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.table import Column

    return [
        TextColumn("{task.description}", table_column=_cut_column()),
        BarColumn(bar_width=BAR_WIDTH),
        *middle,
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
    ]


def _cut_column() -> Any:
    """A table column that takes the room the others leave, on one line cut with an ellipsis."""
    from rich.table import Column

    return Column(ratio=1, no_wrap=True, overflow="ellipsis")


def restart(
    progress: Any, task_id: Any, description: str, total: int | None = None, **fields: Any
) -> None:
    """Reset a Rich task (its elapsed time starts again) with a new description and total; a total
    of None makes the bar indeterminate (Rich's own reset keeps the old total then)."""
    if total is None:
        for task in progress.tasks:
            if task.id == task_id:
                task.total = None
    progress.reset(task_id, total=total, description=description, **fields)


def phase_text(event: ProfileEvent) -> str:
    """What a model is doing, in words: "rexnet_x1.0: preparing compile_cl (1/3)"."""
    what = _LABELS.get(event.phase, event.phase)
    if event.phase == "prepare" and event.item:
        what += f" {event.item} ({event.done + 1}/{event.total}; torch.compile compiles here)"
    elif event.phase == "instructions" and event.item:
        what += f" of {event.item} under callgrind (minutes)"
    elif event.phase == "count" and event.item:
        what += f" {event.item}"
    return f"{event.model}: {what}"


class LiveView:
    """Rich progress lines on stderr with a redraw thread that runs only while `ticking`."""

    INTERVAL_S = 0.5

    def __init__(self, err: Any, columns: list[Any], expand: bool = False) -> None:
        from rich.progress import Progress

        self.enabled = bool(err.is_terminal)
        self.progress = Progress(
            *columns,
            console=err,
            auto_refresh=False,
            transient=True,
            disable=not self.enabled,
            expand=expand,
        )
        self.last = 0.0
        self._tick = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __enter__(self: View) -> View:
        if self.enabled:
            self.progress.start()
            self._thread = threading.Thread(target=self._run, name="rexbench-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._tick.set()  # wake the thread so that it ends
        if self._thread is not None:
            self._thread.join()
        self.progress.stop()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._tick.wait()
            with self._lock:
                if self._tick.is_set() and not self._closed.is_set():
                    self.progress.refresh()
            self._closed.wait(self.INTERVAL_S)

    def ticking(self, on: bool) -> None:
        """Start or stop the redraw thread; when stopped, no redraw is under way on return."""
        if on:
            self._tick.set()
            return
        self._tick.clear()
        with self._lock:
            pass

    def redraw(self, force: bool) -> None:
        now = time.monotonic()
        if self.enabled and (force or now - self.last >= self.INTERVAL_S):
            self.last = now
            with self._lock:
                self.progress.refresh()


class ProgressView(LiveView):
    """One line: the model and its phase, the phase's elapsed time, and the timed calls done."""

    def __init__(self, err: Any, runners: int, runs: int, warmup: int) -> None:
        super().__init__(err, line_columns(_calls_column()), expand=True)
        self.task = self.progress.add_task("starting", total=None)
        self.runners, self.runs = runners, runs
        self.done: dict[str, int] = {}
        self.phase = ""

    def update(self, event: ProfileEvent) -> None:
        if event.phase == _TIMED:
            self.ticking(False)
            self.done[event.item or ""] = event.done
            described = f"{event.model}: timing {self.runners} runner(s) interleaved"
            if self.phase != _TIMED:
                restart(self.progress, self.task, described, self.runs * self.runners)
            self.progress.update(self.task, completed=sum(self.done.values()))
        else:
            self.done = {}
            if event.phase != self.phase or event.phase != "warmup":
                restart(self.progress, self.task, phase_text(event))
            self.ticking(event.phase != "record")
        self.phase = event.phase
        self.redraw(force=event.phase != _TIMED)


class SweepView(LiveView):
    """Two lines: the whole sweep (models done, elapsed, ETA) and the current models' phase;
    `models` counts every model measured, those of a batch timed together included."""

    def __init__(self, err: Any, models: int, runners: int, runs: int, warmup: int) -> None:
        super().__init__(err, line_columns(_calls_column()), expand=True)  # calls, or the ETA
        self.overall = self.progress.add_task("sweep", total=None, status="")
        self.current = self.progress.add_task("", total=None, status="")
        self.eta = SweepClock(models, runs * runners)
        self.models, self.index, self.size, self.phase, self.runs = models, 0, 1, "", runs
        self.calls: dict[str, int] = {}  # calls timed per runner of the current batch

    def next_model(self, index: int, batch: Batch) -> None:
        """Before `batch` (its models timed in the same rounds, with one anchor) is measured."""
        size = len(batch.items)
        self.index, self.size, self.calls, self.phase = index, size, {}, ""
        self.eta.next_model(index, size, self.runs * (size * len(batch.configs) + 1))
        restart(self.progress, self.current, f"{', '.join(batch.specs)}: building", status="")
        self.ticking(True)
        self._show(force=True)

    def update(self, event: ProfileEvent) -> None:
        if event.phase == _TIMED:
            self.ticking(False)
            self.calls[f"{event.model} {event.item}"] = event.done  # a batch: labels repeat
            self.eta.timed(sum(self.calls.values()))
            if self.phase != _TIMED:
                restart(
                    self.progress,
                    self.current,
                    f"{event.model}: timing",
                    self.eta.group_calls,
                    status="",
                )
            self.progress.update(self.current, completed=sum(self.calls.values()))
        elif event.phase != self.phase or event.phase != "warmup":
            restart(self.progress, self.current, phase_text(event), status="")
            self.ticking(event.phase != "record")
        self.phase = event.phase
        self._show(force=event.phase != _TIMED)

    def _show(self, force: bool) -> None:
        first, last = self.index + 1, self.index + self.size
        which = f"model {first}" if first == last else f"models {first}-{last}"
        self.progress.update(
            self.overall, description=f"{which}/{self.models}", status=self.eta.text()
        )
        self.redraw(force)

    def redraw(self, force: bool) -> None:
        if self.enabled:  # the ETA is text: refresh it at every redraw, ticking or not
            self.progress.update(self.overall, status=self.eta.text())
        super().redraw(force)

    def _run(self) -> None:  # the thread also refreshes the sweep's ETA
        while not self._closed.is_set():
            self._tick.wait()
            with self._lock:
                if self._tick.is_set() and not self._closed.is_set():
                    self.progress.update(self.overall, status=self.eta.text())
                    self.progress.refresh()
            self._closed.wait(self.INTERVAL_S)


class SweepClock:
    """The ETA of a sweep, compile time included: a model takes its setup (build, count, compile,
    warm-up) plus its timed calls at the rate seen so far; models not yet started take the mean
    of the finished ones (or the current one's estimate while none has finished). Models timed
    together (a batch of `size`) count as `size` models: their time is shared out evenly."""

    def __init__(
        self, models: int, per_model_calls: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.models, self.per_model_calls, self.clock = models, max(per_model_calls, 1), clock
        self.model_start = clock()
        self.index, self.size, self.durations = 0, 1, []  # type: ignore[var-annotated]
        self.group_calls = self.per_model_calls
        self.timing_start: float | None = None
        self.calls = 0

    def next_model(self, index: int, size: int = 1, calls: int | None = None) -> None:
        """Models index..index+size-1 start, timed together in `calls` calls (default: one
        model's)."""
        now = self.clock()
        if index > self.index:
            self.durations += [(now - self.model_start) / self.size] * self.size
        self.index, self.model_start, self.timing_start, self.calls = index, now, None, 0
        self.size, self.group_calls = size, calls or self.per_model_calls * size

    def timed(self, calls: int) -> None:
        if self.timing_start is None:
            self.timing_start = self.clock()
        self.calls = calls

    def current_estimate(self) -> float | None:
        """Seconds the current models will take in all, once their timing rate is known."""
        if self.timing_start is None or self.calls <= 0:
            return None
        rate = self.calls / max(self.clock() - self.timing_start, 1e-9)
        return (self.timing_start - self.model_start) + self.group_calls / rate

    def remaining(self) -> float | None:
        now, current = self.clock(), self.current_estimate()
        if self.durations:
            per_model: float | None = sum(self.durations) / len(self.durations)
        else:
            per_model = None if current is None else current / self.size
        if per_model is None:
            return None
        this = current if current is not None else per_model * self.size
        left = max(this - (now - self.model_start), 0.0)
        return left + per_model * (self.models - self.index - self.size)

    def text(self) -> str:
        """ "ETA 0:01:40" (the elapsed time has a column of its own)."""
        left = self.remaining()
        return "ETA once timing starts" if left is None else f"ETA {_duration(left)}"


class ConsoleHooks:
    """The library's progress hooks (rexbench.gate.run.Hooks) on a stderr console: counting as a
    spinner with its elapsed time, timing as a ProgressView. Notes are kept and printed by
    `print_notes` after the result, so that an error is the first thing a failing command prints."""

    def __init__(self, err: Any) -> None:
        self.err = err
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    def print_notes(self) -> None:
        for text in self.notes:
            self.err.print(f"note: {text}", highlight=False, soft_wrap=True)
        self.notes.clear()

    @contextlib.contextmanager
    def counting(self) -> Iterator[Callable[[str], None]]:
        with working(self.err, "counting") as status:
            yield lambda spec: status(f"counting {spec}")

    @contextlib.contextmanager
    def measuring(self, runners: int, runs: int, warmup: int) -> Iterator[Callable[[Any], None]]:
        with ProgressView(self.err, runners, runs, warmup) as view:
            yield view.update


@contextlib.contextmanager
def working(err: Any, text: str) -> Iterator[Callable[[str], None]]:
    """A spinner with a live elapsed time for work that times nothing (counting, loading); yields
    a function that changes its text."""
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Column

    text = TextColumn("{task.description}", table_column=_cut_column())
    clock = TimeElapsedColumn(table_column=Column(no_wrap=True))
    view = LiveView(err, [SpinnerColumn(), text, clock], expand=True)
    task = view.progress.add_task(text, total=None)
    with view:
        view.ticking(True)
        yield lambda new: view.progress.update(task, description=new)
