"""Overhead of `rexbench sweep --cluster local` against the same sweep run locally (docs/fleet.md).

Each repeat runs, in fresh processes, the local sweep and the fleet sweep of the same models into
fresh folders (the order alternates between repeats, so drift of the machine hits both alike):

    rexbench sweep MODELS --config C --runs R --out OUT/rK/local --json
    rexbench sweep MODELS --config C --runs R --out OUT/rK/fleet --json --cluster local

Reported per model: both medians with their 95% CIs (distribution-free, from the records' raw
samples) and whether the CIs overlap (target: they do). Reported per repeat: the sweeps' own wall
times (the JSON's `seconds`: for the fleet from its first Ray task, after the in-process cluster
started) and the fleet's excess over the local one (target: <= +15%), and the cluster start-up
(process wall time minus the fleet's `seconds`) apart.

Usage:
    python benchmarks/fleet_overhead.py [--models rexnet_x1.0 efficientnet_b0] [--config compile_cl]
                                        [--runs 1000] [--repeats 2] [--out bench/fleet-overhead]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rexbench.records.store import load_records


def sweep(args: argparse.Namespace, out: Path, fleet: bool) -> dict:
    """One sweep in a fresh process: its JSON and the process's wall time."""
    cmd = [
        sys.executable,
        "-m",
        "rexbench",
        "sweep",
        *args.models,
        "--config",
        args.config,
        "--runs",
        str(args.runs),
        "--out",
        str(out),
        "--json",
    ]
    if fleet:
        cmd += ["--cluster", "local"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {"wall": wall, "seconds": json.loads(done.stdout)["seconds"], "load": os.getloadavg()[0]}


def latencies(folder: Path) -> dict[str, tuple[float, float, float]]:
    out = {}
    for record in load_records(folder):
        lat = record.latency
        out[record.model.spec] = (lat.median_ms, lat.ci_low_ms, lat.ci_high_ms)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["rexnet_x1.0", "efficientnet_b0"])
    parser.add_argument("--config", default="compile_cl")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/fleet-overhead"))
    args = parser.parse_args()
    print(
        f"models {' '.join(args.models)}; config {args.config}; runs {args.runs}; "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    print(
        f"{'repeat':>6} {'model':<18} {'local ms [95% CI]':>26} {'fleet ms [95% CI]':>26} "
        f"{'overlap':>7}"
    )
    for k in range(args.repeats):
        order = (False, True) if k % 2 == 0 else (True, False)
        runs, folders = {}, {}
        for fleet in order:
            folders[fleet] = args.out / f"r{k}" / ("fleet" if fleet else "local")
            runs[fleet] = sweep(args, folders[fleet], fleet)
        local, fleet = latencies(folders[False]), latencies(folders[True])
        for model in args.models:
            a, b = local[model], fleet[model]
            overlap = a[1] <= b[2] and b[1] <= a[2]
            print(
                f"{k:>6} {model:<18} {a[0]:9.3f} [{a[1]:7.3f}-{a[2]:7.3f}] "
                f"{b[0]:9.3f} [{b[1]:7.3f}-{b[2]:7.3f}] {'yes' if overlap else 'NO':>7}"
            )
        excess = runs[True]["seconds"] / runs[False]["seconds"] - 1
        startup = runs[True]["wall"] - runs[True]["seconds"]
        print(
            f"{k:>6} sweep wall: local {runs[False]['seconds']:.1f} s, fleet {runs[True]['seconds']:.1f} s "
            f"({excess:+.1%}; target <= +15%); process wall: local {runs[False]['wall']:.1f} s, "
            f"fleet {runs[True]['wall']:.1f} s (cluster start-up and shutdown {startup:.1f} s); "
            f"1-min load {runs[False]['load']:.1f} / {runs[True]['load']:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
