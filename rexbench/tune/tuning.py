"""One `rexbench tune` as a library call: every input checked before anything is measured (`plan`),
the search (rexbench.tune.search), and its outcome (`outcome`): the recommendation, the Pareto
front, the deploy snippet run once in a fresh process, the figure, and the data that the command
prints (as a table, or as JSON).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.measure.run.parts import REAL, Parts
from rexbench.tune import turns, verify
from rexbench.tune.budget import Budget, parse_budget, set_up_again
from rexbench.tune.deploy import WARMUP
from rexbench.tune.recommend import front, recommend
from rexbench.tune.results import WINNER, Result
from rexbench.tune.search import Request, Search
from rexbench.tune.space import Axes, Candidate, Space, search_space


@dataclass(frozen=True)
class Inputs:
    """The command line, as given. axes: Axes' fields (configs, threads, dtypes, layouts,
    allocators, batch_sizes) as lists of strings or None."""

    model: str
    budget: str = "10m"
    objective: str = "latency"
    min_agreement: float = 0.99
    axes: dict[str, Sequence[str] | None] = field(default_factory=dict)
    weights: str | None = None
    runs: int = 1000
    out: Path = Path("runs")
    snippet: Path | None = None
    figure: Path | None = None


@dataclass(frozen=True)
class Plan:
    """The checked inputs: the canonical model, the space, the budget (started), the paths."""

    spec: str
    space: Space
    budget: Budget
    objective: str
    min_agreement: float
    weights: str | None
    runs: int
    out: Path
    snippet: Path
    figure: Path


def plan(inputs: Inputs, in_process: bool = False) -> Plan:
    """Check every input (one RexbenchError line for the first bad one) and start the budget."""
    from rexbench.figures import check_figure_path
    from rexbench.measure.machine.env import machine_id
    from rexbench.records.store import check_writable, machine_dir, slug
    from rexbench.spec import parse

    spec = str(parse(inputs.model))
    seconds = parse_budget(inputs.budget)
    if not 0 <= inputs.min_agreement <= 1:
        raise RexbenchError(
            f"--min-agreement {inputs.min_agreement:g}: give a fraction from 0 to 1"
        )
    if inputs.runs < 1:
        raise RexbenchError(f"--runs {inputs.runs}: give a number of timed calls of 1 or more")
    a = inputs.axes
    space = search_space(
        Axes(
            configs=a.get("configs"),
            threads=_integers("--threads", a.get("threads")),
            dtypes=a.get("dtypes"),
            layouts=a.get("layouts"),
            allocators=a.get("allocators"),
            batch_sizes=_integers("--batch-size", a.get("batch_sizes")),
            objective=inputs.objective,
            in_process=in_process,
        )
    )
    folder, name = inputs.out / "tune", slug(spec)
    snippet = inputs.snippet or folder / f"{name}.py"
    if snippet.suffix != ".py" or snippet.is_dir():
        raise RexbenchError(f"--snippet {snippet}: give a file name ending in .py")
    figure = check_figure_path(inputs.figure or folder / f"{name}.png", option="--figure")
    check_writable(machine_dir(inputs.out, machine_id()))
    for folder in {snippet.parent, figure.parent}:
        check_writable(folder, "--snippet" if folder == snippet.parent else "--figure")
    return Plan(
        spec=spec,
        space=space,
        budget=Budget(seconds),
        objective=inputs.objective,
        min_agreement=inputs.min_agreement,
        weights=inputs.weights,
        runs=inputs.runs,
        out=inputs.out,
        snippet=snippet,
        figure=figure,
    )


def _integers(option: str, values: Sequence[str] | None) -> list[int] | None:
    if values is None:
        return None
    out = []
    for text in values:
        for item in str(text).split(","):
            if not item.strip():
                continue
            try:
                out.append(int(item))
            except ValueError:
                raise RexbenchError(
                    f"{option} {item.strip()!r}: give whole numbers, e.g. {option} 1,2"
                ) from None
    if not out:
        raise RexbenchError(f"{option} needs a value, e.g. {option} 1,2")
    return out


def new_search(p: Plan, parts: Parts, progress: Callable[[str], None] | None = None) -> Search:
    request = Request(
        spec=p.spec,
        candidates=p.space.candidates,
        budget_s=p.budget.total_s,
        objective=p.objective,
        min_agreement=p.min_agreement,
        weights=p.weights,
        out_dir=p.out,
        full_runs=p.runs,
        parts=parts,
    )
    return Search(request, p.budget, progress)


def reserve(best: Candidate, search: Search) -> float:
    """Seconds to keep for the deploy snippet's run (a fresh interpreter, the setup and the calls)
    and for rexbench's calls of the winner in turns with it (a worker, the setup and the calls)."""
    call = search.costs.call_s(best.key, best.kind)
    runs = verify.runs_for(call)
    snippet = verify.START_S + search.costs.setup_s(best.kind) + (runs + WARMUP) * call
    if search.request.parts is not REAL:  # in-process test doubles: no worker to time it again
        return snippet
    worker = search.costs.setup_s(set_up_again(best.kind))  # its graphs are in the search's cache
    return snippet + worker + (runs + WARMUP + -(-runs // verify.PARTS)) * call


def outcome(p: Plan, search: Search, interrupted: bool = False) -> dict[str, Any]:
    """What the search found, as the command prints it: every candidate, the front, the
    recommendation, and (unless interrupted) the deploy snippet checked and the figure drawn."""
    results = list(search.results.values())
    winner = recommend(results, p.objective, p.min_agreement, search.trained)
    if winner is not None:
        winner.status = WINNER
    points = front(results, p.objective)
    checked = figure = None
    if not interrupted:
        if winner is not None:
            checked = _deploy(p, search, winner)
        figure = str(_draw(p, search, winner, points))
    elapsed = p.budget.elapsed()
    return {
        "model": p.spec,
        "objective": p.objective,
        "budget_s": p.budget.total_s,
        "elapsed_s": elapsed,
        "weights": p.weights,
        "trained_weights": search.trained,
        "min_agreement": p.min_agreement,
        "interrupted": interrupted,
        "rungs": [vars(r) for r in search.rungs],
        "candidates": [r.to_dict(p.objective) for r in results],
        "skipped": [{"what": s.what, "reason": s.reason} for s in p.space.skipped],
        "front": [
            {"candidate": q.name, "ms": q.latency, "top1_agreement": q.agreement} for q in points
        ],
        "recommendation": None if winner is None else winner.to_dict(p.objective),
        "snippet": None if checked is None else checked.to_dict(),
        "figure": figure,
        "records": [str(path) for path in search.records],
        "notes": notes(p, search, winner, checked),
    }


def notes(p: Plan, search: Search, winner: Result | None, checked: Any) -> list[str]:
    """The lines under the table: weights, recommendation, snippet, budget."""
    lines = []
    if not search.trained:
        lines.append(
            f"{p.spec} has random weights (no --weights with trained ones): top-1 agreement "
            "means little, so the output check against eager fp32 judges each candidate"
        )
    rule = "a valid output" if not search.trained else f"top-1 agreement >= {p.min_agreement:g}"
    if winner is None:
        lines.append(f"no candidate was timed with {rule}: nothing to recommend")
    else:
        assert winner.median_s is not None
        lines.append(
            f"recommended ({rule}, the fastest {p.objective} of the last rung): {winner.name}, "
            f"median {winner.median_s * 1e3:.3f} ms per call over {winner.runs} runs"
        )
    if checked is not None:
        lines.append(checked.line)
    timed = sum(r.rung is not None for r in search.results.values())
    lines.append(
        f"{timed} of {len(search.results)} candidates timed in {len(search.rungs)} rung(s), "
        f"{p.budget.elapsed():.0f} s of the {p.budget.total_s:.0f} s budget"
    )
    return lines


def _deploy(p: Plan, search: Search, winner: Result) -> verify.Verification:
    from rexbench.records.store import atomic_write_text
    from rexbench.tune import deploy

    runtime = (winner.preparation or {}).get("runtime") or {}
    shape = winner.shape or (3, 224, 224)
    d = deploy.Deployment(
        p.spec, p.weights, winner.candidate, shape, runtime.get("exporter", "legacy")
    )
    path = atomic_write_text(p.snippet, deploy.snippet(d))
    assert winner.median_s is not None
    call = winner.median_s
    runs = verify.runs_for(call)
    timeout = max(60.0, p.budget.left() + 0.1 * p.budget.total_s)  # what the budget has left
    check = partial(verify.run_snippet, path, runs, call * 1e3, timeout)
    if search.request.parts is not REAL:  # in-process test doubles: no worker to time it again
        return check()
    calls = -(-runs // verify.PARTS)
    again = turns.Winner(p.spec, winner.candidate, shape, p.weights, calls=calls, timeout=timeout)
    checked, taken = turns.in_turns(again, check)
    if isinstance(taken, str):
        return replace(checked, no_turns=taken)
    return checked.with_turns(taken.median_ms, taken.taken)


def _draw(p: Plan, search: Search, winner: Result | None, points: list) -> Path:
    from rexbench.tune.figure import draw

    p.figure.parent.mkdir(parents=True, exist_ok=True)
    title = f"rexbench tune {p.spec}: {p.objective} against top-1 agreement with eager fp32"
    if not search.trained:
        title += "\n(random weights: the agreement means little)"
    return draw(
        list(search.results.values()),
        points,
        winner,
        p.figure,
        title=title,
        objective=p.objective,
        min_agreement=p.min_agreement if search.trained else None,
    )
