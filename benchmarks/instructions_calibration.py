"""Calibrate the `instructions:+N%` gate check: how much do repeated counts vary, quiet and beside
two busy loops, and how large is a genuine change?

Each count is the real command, `rexbench profile SPEC --config eager --instructions --runs 20
--out TMP` (a fresh process; its record's counts.instructions), for:

* quiet_aa:  MODEL, nothing else running (--quiet-repeats times);
* busy_aa:   MODEL beside two busy loops, one pinned to each core (--busy-repeats times);
* change:    each of --changes (other models: a genuinely different amount of work), once.

Writes OUT/runs.jsonl (one line per count: group, model, instructions, per-repeat counts, seconds)
and OUT/summary.md: the A/A spread (largest count / smallest - 1, over all A/A counts) and each
change's ratio to MODEL, against the +2% limit the docs suggest.

Usage:
    python benchmarks/instructions_calibration.py --out results/instructions-calibration
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIMIT = 0.02
BUSY_LOOP = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


def count(spec: str) -> dict:
    """One `rexbench profile --instructions` process; its record's instruction count."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            sys.executable,
            "-m",
            "rexbench",
            "profile",
            spec,
            "--config",
            "eager",
            "--threads",
            "1",
            "--runs",
            "20",
            "--warmup",
            "2",
            "--instructions",
            "--out",
            out,
        ]
        start = time.time()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
        if done.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
        (path,) = Path(out).rglob("*.json")
        counts = json.loads(path.read_text())["counts"]
    method = counts["instructions_method"]
    return {
        "instructions": counts["instructions"],
        "per_call": method["per_call"],
        "count_seconds": method["seconds"],
        "seconds": round(time.time() - start, 1),
    }


def busy_loops() -> list[subprocess.Popen]:
    cores = sorted(os.sched_getaffinity(0))[:2]
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(c)]) for c in cores]


def summary(rows: list[dict], model: str) -> str:
    aa = [r["instructions"] for r in rows if r["group"] in ("quiet_aa", "busy_aa")]
    lines = [
        "| group | model | instructions / call | vs first quiet count | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    first = aa[0]
    for r in rows:
        lines.append(
            f"| {r['group']} | {r['model']} | {r['instructions']:,} | "
            f"{r['instructions'] / first - 1:+.4%} | {r['seconds']:.0f} |"
        )
    spread = max(aa) / min(aa) - 1
    lines += [
        "",
        f"A/A: {len(aa)} counts of {model}, largest / smallest - 1 = {spread:.2e} "
        f"(limit +{LIMIT:.0%}: {'no' if spread < LIMIT else 'a'} false regression).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/instructions-calibration")
    parser.add_argument("--model", default="rexnet_x0.9")
    parser.add_argument("--changes", default="rexnet_x1.0,mobilenet_v2")
    parser.add_argument("--quiet-repeats", type=int, default=2)
    parser.add_argument("--busy-repeats", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plan = [("quiet_aa", args.model)] * args.quiet_repeats
    plan += [("busy_aa", args.model)] * args.busy_repeats
    plan += [("change", m) for m in args.changes.split(",") if m]
    rows = []
    for group, model in plan:
        loops = busy_loops() if group == "busy_aa" else []
        try:
            row = {"group": group, "model": model, **count(model)}
        finally:
            for loop in loops:
                loop.kill()
                loop.wait()
        rows.append(row)
        with (out / "runs.jsonl").open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"{group} {model}: {row['instructions']:,} ({row['seconds']:.0f} s)", flush=True)
    (out / "summary.md").write_text(summary(rows, args.model))
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
