"""Where does a sweep's extra wall time with worker processes go? One profile of a few models, one
configuration each, timed one model after the other (as `rexbench sweep` does), with a worker per
model and then `--in-process`, alternated --pairs times; for each model the seconds from one phase
to the next as rexbench's progress events report them:

  start:    the previous model's records written (or the run's start) to this model's build
  wait:     counted to the first preparation (with workers: the worker's interpreter and imports)
  prepare:  preparation, output check (with workers: the worker builds the model again)
  warm-up, timing: the warm-up calls and the timed rounds

and each model's compile_s (its preparation as the record gives it).

Usage (on a quiet machine, torch.compile's cache warm from one earlier run):
    python benchmarks/worker_phases.py --out results/worker-isolation/phases
    python benchmarks/worker_phases.py --models py:nets.py:Net --config eager --runs 6 --out /tmp/wp
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

PHASES = ("build", "count", "prepare", "warmup", "timing", "record")
NAMES = ("start", "wait", "prepare", "warm-up", "timing")


def timeline(models: list[str], config: str, runs: int, in_process: bool) -> dict:
    """One run: each model's phase durations (seconds), its compile_s, and the wall time."""
    from rexbench.measure.config import RunConfig
    from rexbench.measure.run.profile import profile_models
    from rexbench.measure.run.workers import Isolation

    seen: dict[tuple[str, str], float] = {}
    start = time.perf_counter()

    def progress(event) -> None:  # noqa: ANN001 - a ProfileEvent
        seen.setdefault((event.model, event.phase), time.perf_counter() - start)

    records = profile_models(
        models,
        [RunConfig.preset(config)],
        runs=runs,
        warmup=max(2, runs // 10),
        progress=progress,
        isolation=Isolation(in_process=in_process),
    )
    wall = time.perf_counter() - start
    out, before = {}, 0.0
    for model, record in zip(models, records, strict=True):
        at = [seen[model, phase] for phase in PHASES]
        marks = [before, at[0], at[2], at[3], at[4], at[5]]  # count->prepare is the wait
        steps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
        out[model] = dict(zip(NAMES, steps, strict=True)) | {"compile_s": record.timing.compile_s}
        before = at[5]
    return {"models": out, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="rexnet_x0.9,rexnet_x1.0,efficientnet_b0")
    parser.add_argument("--config", default="compile_cl")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    models = args.models.split(",")
    runs = {"workers": [], "in_process": []}
    for pair in range(args.pairs):
        arms = ["workers", "in_process"] if pair % 2 == 0 else ["in_process", "workers"]
        for arm in arms:
            runs[arm].append(timeline(models, args.config, args.runs, arm == "in_process"))
    args.out.mkdir(parents=True, exist_ok=True)
    data = {"settings": vars(args) | {"out": str(args.out)}, "runs": runs}
    (args.out / "worker_phases.json").write_text(json.dumps(data, indent=1) + "\n")
    lines = [
        f"{args.config}, {args.runs} runs, {args.pairs} alternated pair(s); medians over the runs, s",
        "",
        "| arm | model | " + " | ".join(NAMES) + " | compile_s |",
        "| --- | --- | " + " | ".join("---" for _ in NAMES) + " | --- |",
    ]
    for arm, done in runs.items():
        for model in models:
            cells = [statistics.median(r["models"][model][n] for r in done) for n in NAMES]
            compile_s = statistics.median(r["models"][model]["compile_s"] for r in done)
            row = " | ".join(f"{c:.2f}" for c in [*cells, compile_s])
            lines.append(f"| {arm} | {model} | {row} |")
    walls = {arm: statistics.median(r["wall_s"] for r in done) for arm, done in runs.items()}
    ratio = walls["workers"] / walls["in_process"]
    lines.append("")
    lines.append(
        f"wall: workers {walls['workers']:.1f} s, in-process {walls['in_process']:.1f} s, "
        f"ratio {ratio:.3f}"
    )
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
