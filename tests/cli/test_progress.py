"""Progress lines: a live elapsed time while nothing is timed, no drawing while timing (redraws only
from the callback between rounds), "calls" as the unit, and a sweep ETA that counts compile time."""

from __future__ import annotations

import io
import time

from rich.console import Console

from rexbench.cli.progress import ProgressView, SweepClock, SweepView, working
from rexbench.measure.config import RunConfig
from rexbench.measure.run.rounds import ProfileEvent
from rexbench.measure.run.sweep import Batch, PlanItem


def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=120, color_system=None), buffer


class Counting(ProgressView):
    INTERVAL_S = 0.01

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.refreshes = 0
        refresh = self.progress.refresh

        def counted() -> None:
            self.refreshes += 1
            refresh()

        self.progress.refresh = counted  # type: ignore[method-assign]


def test_the_line_moves_while_compiling_and_stops_drawing_when_timing_starts() -> None:
    err, buffer = terminal()
    with Counting(err, runners=2, runs=100, warmup=5) as view:
        view.update(ProfileEvent("prepare", "rexnet_x1.0", "compile_cl", 0, 1))
        time.sleep(0.2)  # a long compile: the thread redraws
        assert view.refreshes >= 5
        view.update(ProfileEvent("timing", "rexnet_x1.0", "compile_cl", 0, 100))
        during = view.refreshes
        time.sleep(0.2)  # a long timed call: nothing draws
        assert view.refreshes == during
        view.update(ProfileEvent("timing", "rexnet_x1.0", "compile_cl", 10, 100))
        assert view.refreshes <= during + 1  # the callback, between rounds, at most twice a second
    text = buffer.getvalue()
    assert "preparing compile_cl" in text and "0:00:00" in text
    assert "0/200 calls" in text


def test_nothing_is_drawn_when_stderr_is_not_a_terminal() -> None:
    buffer = io.StringIO()
    err = Console(file=buffer, force_terminal=False)
    with ProgressView(err, runners=2, runs=10, warmup=1) as view:
        view.update(ProfileEvent("build", "rexnet_x1.0"))
        view.update(ProfileEvent("timing", "rexnet_x1.0", "eager", 10, 10))
    with working(err, "counting") as status:
        status("counting rexnet_x1.0")
    assert buffer.getvalue() == ""


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sweep_eta_counts_build_and_compile_time() -> None:
    clock = FakeClock()
    eta = SweepClock(models=3, per_model_calls=100, clock=clock)
    assert eta.text() == "ETA once timing starts"
    clock.now = 30.0  # 30 s of building and compiling, then timing starts
    eta.timed(0)
    clock.now = 40.0
    eta.timed(50)  # 5 calls/s: this model takes 30 + 100/5 = 50 s
    assert eta.remaining() == 10 + 2 * 50
    clock.now = 50.0
    eta.next_model(1)  # the first model took 50 s: the others are expected to take as long
    assert eta.remaining() == 50 + 50
    assert eta.text() == "ETA 0:01:40"


def test_sweep_eta_counts_models_timed_together_as_that_many_models() -> None:
    clock = FakeClock()
    eta = SweepClock(models=3, per_model_calls=100, clock=clock)
    eta.next_model(0, size=2, calls=150)  # two models, one configuration each, and the anchor
    clock.now = 30.0
    eta.timed(0)
    clock.now = 40.0
    eta.timed(50)  # 5 calls/s: the pair takes 30 + 150/5 = 60 s, 30 s a model
    assert eta.remaining() == 20 + 30
    clock.now = 60.0
    eta.next_model(2)
    assert eta.remaining() == 30


def test_sweep_view_counts_every_model_measured_and_names_a_batch() -> None:
    from rexbench.cli.progress import SweepView
    from rexbench.measure.config import RunConfig
    from rexbench.measure.run.sweep import Batch, PlanItem

    eager = RunConfig.preset("eager", runs=10, warmup=1)
    alone = Batch([PlanItem("rexnet_x0.9", [eager])], [eager])
    pair = Batch([PlanItem("efficientnet_b0", [eager]), PlanItem("rexnet_x1.0", [])], [eager])
    err, buffer = terminal()
    with SweepView(err, models=3, runners=2, runs=10, warmup=1) as view:
        view.next_model(0, alone)
        view.next_model(1, pair)
        for model in ("efficientnet_b0", "rexnet_x1.0"):  # the same label: two runners
            view.update(ProfileEvent("timing", model, "eager", 10, 10))
    text = buffer.getvalue()
    assert "model 1/3" in text and "models 2-3/3" in text and "model 2/3" not in text
    assert "efficientnet_b0, rexnet_x1.0: building" in text
    assert "20/30 calls" in text  # 10 runs x (2 models x 1 configuration + the anchor)


def rendered(view, width: int) -> list[str]:
    """The lines a terminal `width` columns wide shows for the view's live display."""
    buffer = io.StringIO()
    page = Console(file=buffer, width=width, force_terminal=True, color_system=None)
    page.print(view.progress.get_renderable())
    return buffer.getvalue().splitlines()


def test_the_line_fits_80_columns_and_never_cuts_the_clock_or_the_calls() -> None:
    err, _ = terminal()
    view = ProgressView(err, runners=3, runs=1000, warmup=20)
    view.update(ProfileEvent("prepare", "rexnet_x1.0", "compile_cl", 0, 3))
    view.progress.tasks[0].start_time -= 64  # a 64 s compile
    for width in (60, 80):
        (line,) = rendered(view, width)
        assert len(line) <= width and line.endswith(" 0:01:04")
        assert line.startswith("rexnet_x1.0: preparing compile_cl") and "…" in line
    assert rendered(view, 120)[0].startswith(
        "rexnet_x1.0: preparing compile_cl (1/3; torch.compile compiles here) "
    )
    view.update(ProfileEvent("timing", "rexnet_x1.0", "compile_cl", 1230, 1000))
    (line,) = rendered(view, 80)
    assert line.startswith("rexnet_x1.0: timing 3 runner(s) interleaved ")
    assert line.endswith(" 1,230/3,000 calls 0:00:00") and len(line) <= 80


def test_a_sweep_fits_80_columns_with_its_eta_and_clocks_whole() -> None:
    err, _ = terminal()
    eager = RunConfig.preset("eager")
    view = SweepView(err, models=9, runners=3, runs=1000, warmup=20)
    view.next_model(0, Batch([PlanItem("efficientnet_b3", [eager])], [eager]))
    view.update(ProfileEvent("prepare", "efficientnet_b3", "compile_cl", 0, 1))
    overall, current = rendered(view, 80)
    assert overall.startswith("model 1/9 ") and overall.endswith(" ETA once timing starts 0:00:00")
    assert current.startswith("efficientnet_b3: preparing") and current.endswith(" 0:00:00")
    view.update(ProfileEvent("timing", "efficientnet_b3", "compile_cl", 1230, 1000))
    overall, current = rendered(view, 80)
    assert current.endswith(" 1,230/2,000 calls 0:00:00") and len(current) <= 80  # eager + anchor
