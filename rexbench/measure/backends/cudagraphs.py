"""CUDA graphs as a run configuration, and torch.compile's recompilations watched while timing.

torch.compile modes "reduce-overhead" and "max-autotune" replay the model as CUDA graphs through
inductor's CUDA graph trees (torch/_inductor/cudagraph_trees.py). A compiled function is run eagerly
once (warm-up), recorded on the next call and replayed from the call after; only replays are what
the mode is about, so `prepare` warms such a model up until a replay is seen (`warm_until_recorded`).
Every call is preceded by `torch.compiler.cudagraph_mark_step_begin()` (`stepping`): each call is
then a new step, and the previous call's output, which lives in the graph's static memory, may be
overwritten by it; whoever keeps an output clones it first (the parity check does).

Shapes are static (`prepare` compiles with dynamic=False and times one input), so a graph compiled
after the first call is a recompilation (a guard failed); `CompileWatch` counts the graphs dynamo
compiles and the graphs inductor declines to run as CUDA graphs, per runner and phase, from the
timing loop's progress events, between chunks. torch is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: torch.compile modes that run the model as CUDA graphs on a GPU (torch.compile docs).
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")
#: Calls after the first (compiling) one before giving up on seeing a replay: the first call warms
#: up, the second records, the third replays; a few more for models split by graph breaks.
MAX_WARMUP_CALLS = 8


def uses_cudagraphs(compile_mode: str | None, device: str) -> bool:
    return device.startswith("cuda") and compile_mode in CUDAGRAPH_MODES


def stepping(module: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`module(x)` with `torch.compiler.cudagraph_mark_step_begin()` called first."""
    import torch

    mark = torch.compiler.cudagraph_mark_step_begin

    def call(x: Any) -> Any:
        mark()
        return module(x)

    call.compiled = module  # type: ignore[attr-defined]
    return call


def tree_state(device: str) -> str | None:
    """The CUDA graph tree's state on `device` after the last call: "warmup", "recording",
    "execution" (a graph was replayed) or "none"; None where torch's internals do not say (other
    torch versions), in which case `warm_until_recorded` makes a fixed number of calls."""
    try:
        from torch._inductor import cudagraph_trees

        index = int(device.partition(":")[2] or 0)
        manager = cudagraph_trees.get_manager(index, create_if_none_exists=False)
        return "none" if manager is None else str(manager.path_state.name).lower()
    except Exception:
        return None


def warm_until_recorded(
    run: Callable[[], Any],
    state: Callable[[], str | None],
    *,
    max_calls: int = MAX_WARMUP_CALLS,
    synchronize: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Call `run()` (under inference mode, as the timing loop does) until `state()` says a graph was
    replayed; what a record keeps about it: calls made, whether a replay was seen (None: unknown),
    the states seen after each call."""
    import torch

    states: list[str | None] = []
    recorded: bool | None = False
    with torch.inference_mode():
        while len(states) < max_calls:
            run()
            synchronize()
            states.append(state())
            if states[-1] == "execution":
                recorded = True
                break
            if states[-1] is None and len(states) >= 3:  # no state to read: warm-up, record, replay
                recorded = None
                break
    return {"warmup_calls": len(states), "recorded": recorded, "states": states}


# ------------------------------------------------------------------------- recompilations


def compile_counters() -> dict[str, int]:
    """Graphs dynamo has compiled and graphs inductor ran without CUDA graphs, so far in this
    process (torch._dynamo.utils.counters; torch._dynamo.reset() clears them)."""
    from torch._dynamo.utils import counters

    return {
        "graphs": int(counters["stats"]["unique_graphs"]),
        "cudagraph_skips": int(counters["inductor"]["cudagraph_skips"]),
    }


class CompileWatch:
    """Counts, per runner, the graphs compiled (and CUDA graphs skipped) during its warm-up and
    during its timing chunks: `seen(runner, phase)` is called after each of them, and whatever the
    counters grew by since the previous call happened in that runner's calls."""

    def __init__(
        self, runners: Sequence[str], read: Callable[[], dict[str, int]] = compile_counters
    ) -> None:
        self._read = read
        self._last = read()
        self.counts = {
            r: {"warmup_graphs": 0, "timing_graphs": 0, "cudagraph_skips": 0} for r in runners
        }

    def seen(self, runner: str, phase: str) -> None:
        now = self._read()
        grown = {k: max(0, now.get(k, 0) - self._last.get(k, 0)) for k in now}
        self._last = now
        if runner not in self.counts:
            return
        key = "warmup_graphs" if phase == "warmup" else "timing_graphs"
        self.counts[runner][key] += grown.get("graphs", 0)
        self.counts[runner]["cudagraph_skips"] += grown.get("cudagraph_skips", 0)


def recompile_warnings(counts: dict[str, int] | None, cudagraphs: bool) -> list[str]:
    """Warnings for a compiled runner's counts (see CompileWatch)."""
    if not counts:
        return []
    out = []
    warm, timed = counts.get("warmup_graphs", 0), counts.get("timing_graphs", 0)
    if warm or timed:
        out.append(
            f"recompiled: {warm} graph(s) compiled during the warm-up and {timed} during the timed "
            "calls, after the first call had compiled the model (a dynamo guard failed); the "
            "timed samples may include compilation: re-run"
        )
    if cudagraphs and counts.get("cudagraph_skips"):
        out.append(
            f"CUDA graphs skipped for {counts['cudagraph_skips']} graph(s) during the measurement: "
            "inductor ran them without CUDA graphs"
        )
    return out


def warm_up(run: Callable[[], Any], device: str, before: dict[str, int]) -> dict[str, Any]:
    """`warm_until_recorded` on a real device, plus the graphs compiled and the CUDA graphs skipped
    since `before` (compile_counters() read before the compiling first call)."""
    import torch

    info = warm_until_recorded(
        run, lambda: tree_state(device), synchronize=lambda: torch.cuda.synchronize(device)
    )
    after = compile_counters()
    info["graphs"] = after["graphs"] - before.get("graphs", 0)
    info["cudagraph_skips"] = after["cudagraph_skips"] - before.get("cudagraph_skips", 0)
    return info
