"""Does `rexbench profile` slow what it measures? Its median against a minimal loop in another process.

Each pair runs, in alternating order, two fresh processes on the same model (benchmarks/plain_net.py,
a ReXNet-1.0-sized network in plain torch):

* cli:  `python -m rexbench profile py:benchmarks/plain_net.py:build --config C --threads T
        --runs R --warmup W --out TMP` (the real command; its record gives the median);
* loop: benchmarks/plain_loop.py (no rexbench import: a clock around each call, same threads, same
        warm-up, same input), under the allocator policy rexbench applies to itself
        (rexbench.measure.allocator: glibc's MALLOC_MMAP_MAX_=0 and MALLOC_TRIM_THRESHOLD_ set in
        its environment before it starts);

and, with --default-loop, a third process: the same loop under glibc's default allocator, to show
how much the per-call page faults of that default cost and how they vary from process to process.

The CLI passes when the median over pairs of cli median / loop median is within 3% of 1. Per pair:
medians, their ratio, minor page faults per timed call and thread counts, in OUT/<config>.json.

Usage:
    python benchmarks/cli_overhead.py --config eager --pairs 5 --runs 200 --out results/cli-overhead
    python benchmarks/cli_overhead.py --config compile --pairs 5 --runs 200 --out results/cli-overhead
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rexbench.measure.allocator import ENV_VARS

HERE = Path(__file__).resolve().parent
SPEC = "py:benchmarks/plain_net.py:build"
TOLERANCE = 0.03


def run_cli(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "rexbench", "profile", SPEC, "--config", args.config,
               "--threads", str(args.threads), "--runs", str(args.runs),
               "--warmup", str(args.warmup), "--out", out]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
        if done.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
        (path,) = Path(out).rglob("*.json")
        record = json.loads(path.read_text())
    contention = record["summary"].get("contention", {})
    return {
        "median_ns": statistics.median(record["timing"]["samples_ns"]),
        "faults_per_call": contention.get("faults_per_call"),
        "threads": contention.get("threads_max"),
        "contention": contention,
        "allocator": record["env"].get("allocator"),
    }


def run_loop(args: argparse.Namespace, steady: bool) -> dict:
    cmd = [sys.executable, str(HERE / "plain_loop.py"), "--threads", str(args.threads),
           "--runs", str(args.runs), "--warmup", str(args.warmup)]  # fmt: skip
    if args.config.startswith("compile"):
        cmd.append("--compile")
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    if steady:
        env.update(ENV_VARS)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE.parent)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    data.pop("samples_ns")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="eager", choices=["eager", "compile"])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--default-loop", action="store_true", help="also the default allocator")
    parser.add_argument("--out", default="results/cli-overhead")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = []
    t0 = time.time()
    for i in range(args.pairs):
        arms = [("cli", lambda: run_cli(args)), ("loop", lambda: run_loop(args, True))]
        if args.default_loop:
            arms.append(("loop_default_malloc", lambda: run_loop(args, False)))
        arms = arms if i % 2 == 0 else arms[::-1]
        pair = {"pair": i + 1, "order": [name for name, _ in arms]}
        for name, fn in arms:
            pair[name] = fn()
        pair["ratio"] = pair["cli"]["median_ns"] / pair["loop"]["median_ns"]
        pairs.append(pair)
        extra = ""
        if args.default_loop:
            extra = f", default-malloc loop {pair['loop_default_malloc']['median_ns'] / 1e6:.2f} ms"
        print(
            f"pair {i + 1}: cli {pair['cli']['median_ns'] / 1e6:.2f} ms, loop "
            f"{pair['loop']['median_ns'] / 1e6:.2f} ms, ratio {pair['ratio']:.3f}{extra} "
            f"({(time.time() - t0) / 60:.1f} min)",
            flush=True,
        )
    ratio = statistics.median(p["ratio"] for p in pairs)
    verdict = "PASS" if abs(ratio - 1) <= TOLERANCE else "FAIL"
    summary = {"config": args.config, "threads": args.threads, "runs": args.runs,
               "warmup": args.warmup, "median_ratio": ratio, "tolerance": TOLERANCE,
               "verdict": verdict, "pairs": pairs}  # fmt: skip
    (out / f"{args.config}.json").write_text(json.dumps(summary, indent=2))
    print(
        f"{args.config}: median ratio cli / loop = {ratio:.3f} over {len(pairs)} pairs: {verdict}"
    )


if __name__ == "__main__":
    main()
