"""Wall time of the rank study (paper Figure 1) at 1, 2, ... worker processes, and the speed-up.

Each run is the real command in a fresh process, alternating the order between repeats:

    rexbench rank study --networks N --workers W --json

The numbers of every run must be identical (each network is seeded by its index), which is checked;
the wall time is the command's own `wall_time_s` (sampling only: process start and the spawn of the
workers' interpreters included, imports of the parent excluded). The speed-up is the 1-worker time
over the W-worker time of the same repeat. `--cluster ADDRESS` times `--cluster` the same way.

Usage:
    python benchmarks/rank_workers.py [--networks 1000] [--workers 1 2] [--repeats 1]
                                      [--cluster local]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def study(networks: int, extra: list[str]) -> tuple[float, dict]:
    cmd = [
        sys.executable,
        "-m",
        "rexbench",
        "rank",
        "study",
        "--networks",
        str(networks),
        "--json",
        *extra,
    ]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout)
    wall = data.pop("wall_time_s")
    for key in ("workers", "cluster"):
        data.pop(key)
    return wall, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cluster", default=None, help="also time --cluster ADDRESS")
    args = parser.parse_args()
    arms = [(f"workers={w}", ["--workers", str(w)]) for w in args.workers]
    if args.cluster:
        arms.append((f"cluster={args.cluster}", ["--cluster", args.cluster]))
    print(f"rank study, {args.networks} networks per point; {os.cpu_count()} CPUs", flush=True)
    reference = None
    for k in range(args.repeats):
        walls = {}
        for name, extra in arms if k % 2 == 0 else arms[::-1]:
            before = os.getloadavg()[0]
            walls[name], numbers = study(args.networks, extra)
            reference = reference or numbers
            same = "identical" if numbers == reference else "DIFFERENT"
            print(
                f"repeat {k} {name:<16} {walls[name]:8.1f} s  numbers {same}  "
                f"(1-min load before {before:.1f})",
                flush=True,
            )
        base = walls[arms[0][0]]
        for name in (n for n, _ in arms[1:]):
            print(f"repeat {k} speed-up {arms[0][0]} -> {name}: {base / walls[name]:.2f}x")


if __name__ == "__main__":
    main()
