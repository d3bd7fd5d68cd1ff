"""The minimal loop that benchmarks/cli_overhead.py compares `rexbench profile` with: torch and
benchmarks/plain_net.py only (no rexbench import), a clock around each call, nothing else.

Prints one JSON line: samples (ns), median, minor page faults per timed call, threads of the process.
Usage: python benchmarks/plain_loop.py --threads 2 --runs 200 --warmup 20 [--compile] [--until FILE]
       [--weights STATE_DICT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_net import build  # noqa: E402


def built(weights: str | None) -> torch.nn.Module:
    """plain_net in eval mode, with `weights` (a state dict) loaded when given."""
    model = build().eval()
    if weights:
        model.load_state_dict(torch.load(weights, weights_only=True))
    return model


def seeded_input() -> torch.Tensor:
    return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def timed(model, x: torch.Tensor, warmup: int, runs: int, stop: Path | None = None) -> dict:  # noqa: ANN001
    """`warmup` calls, then `runs` timed calls (until `stop` exists, when given); what main prints."""
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        samples, ends = [], []
        while len(samples) < runs if stop is None else not stop.exists():
            t0 = time.perf_counter_ns()
            model(x)
            samples.append(time.perf_counter_ns() - t0)
            ends.append(time.time_ns())
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {
        "median_ns": statistics.median(samples),
        "faults_per_call": faults / len(samples),
        "threads": len(os.listdir("/proc/self/task")),
        "samples_ns": samples,
        "ends_ns": ends,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--weights", help="a state_dict to load (the CLI gets the same file)")
    parser.add_argument(
        "--until",
        help="time until this file exists (not --runs calls), each sample with its "
        "wall-clock end in ns: a benchmark that pauses and resumes this process picks a window",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, x = built(args.weights), seeded_input()
    if args.compile:
        model = torch.compile(model, dynamic=False)
        with torch.inference_mode():
            model(x)  # compiles, as rexbench's prepare does before its warm-up
    stop = Path(args.until) if args.until else None
    print(json.dumps(timed(model, x, args.warmup, args.runs, stop)))


if __name__ == "__main__":
    main()
