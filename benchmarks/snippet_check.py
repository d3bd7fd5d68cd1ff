"""How close does `rexbench tune`'s deploy check read, run again and again on one configuration?

Writes the deploy snippet of one configuration (as tune writes it for its winner) and runs tune's
check REPEATS times: each time a fresh worker prepares the configuration (its graph from one cache
of built graphs, as in a search), the snippet runs once in a fresh process, its timed calls in
parts in turns with the worker's (rexbench.tune.turns), and the ratio of the two medians is what
tune judges within 5%. With --no-cache the worker builds the graph itself, as the snippet does.

    python benchmarks/snippet_check.py rexnet_x1.0 --config openvino_int8 --repeats 5 \
        --out results/tune/snippet-check

Writes OUT/snippet_check.jsonl (one line per check) and prints each line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from functools import partial
from pathlib import Path

from rexbench.measure.backends import artifacts
from rexbench.measure.config import RunConfig
from rexbench.tune import deploy, turns, verify
from rexbench.tune.space import Candidate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--config", default="openvino_int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--runs", type=int, default=200, help="the snippet's timed calls")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-cache", action="store_true", help="the worker builds its graph")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    candidate = Candidate(RunConfig.preset(args.config, threads=args.threads), "steady")
    shape = (3, 224, 224)
    path = args.out / f"deploy_{args.config}.py"
    wanted = deploy.Deployment(args.model, args.weights, candidate, shape, "legacy")
    path.write_text(deploy.snippet(wanted))
    calls = -(-args.runs // verify.PARTS)
    cache = contextlib.nullcontext() if args.no_cache else artifacts.kept()
    lines = []
    with cache, (args.out / "snippet_check.jsonl").open("w") as out:
        for repeat in range(args.repeats):
            started = time.monotonic()
            winner = turns.Winner(args.model, candidate, shape, args.weights, calls, timeout=900)
            check = partial(verify.run_snippet, path, args.runs, 1.0, 900)
            checked, taken = turns.in_turns(winner, check)
            line = {"repeat": repeat, "config": args.config, "cache": not args.no_cache}
            if isinstance(taken, str) or checked.median_ms is None:
                line["error"] = taken if isinstance(taken, str) else checked.error
            else:
                judged = checked.with_turns(taken.median_ms, taken.taken)
                line.update(
                    snippet_ms=judged.median_ms,
                    rexbench_ms=judged.rexbench_ms,
                    turns=judged.turns,
                    ratio=judged.side_by_side,
                    within=judged.within,
                )
            line["seconds"] = round(time.monotonic() - started, 1)
            lines.append(line)
            out.write(json.dumps(line) + "\n")
            out.flush()
            print(json.dumps(line), flush=True)
    ratios = [line["ratio"] for line in lines if "ratio" in line]
    if ratios:
        within = sum(abs(r - 1) <= verify.TOLERANCE for r in ratios)
        print(
            f"{len(ratios)} checks: ratio median {statistics.median(ratios):.3f}, "
            f"range {min(ratios):.3f}-{max(ratios):.3f}, {within} within 5%"
        )


if __name__ == "__main__":
    main()
