"""Calibrate the gate on a contended machine: A/A and genuine slowdowns, quiet and beside busy loops.

Method (docs/gate.md, Contention):

1. Wait (up to --wait-minutes) for a quiet machine, then save a baseline of MODEL with the real
   command, `rexbench baseline save py:benchmarks/gate_envnet.py:build --config eager --threads T
   --runs R --warmup W --dir OUT/baselines` (CALIB_MODEL=MODEL: the spec builds MODEL). A baseline
   measured under contention is refused by rexbench itself; the script then waits and tries again.
2. REPEATS rounds; in each, one fresh `rexbench gate py:benchmarks/gate_envnet.py:build --json`
   process per group, in this order:
   - quiet_aa:   CALIB_MODEL=MODEL (unchanged), nothing else started;
   - busy_aa:    the same, with two busy loops (one pinned to each of the first two usable cores)
                 started right before the gate and stopped right after it;
   - quiet_slow: CALIB_MODEL=SLOW (a wider ReXNet behind the same spec: a genuine slowdown);
   - busy_slow:  SLOW beside the busy loops (only in the first --busy-slow-repeats rounds).
   Every busy loop has a hard lifetime (--busy-seconds) and is killed when the gate ends, when
   the script ends, is interrupted or fails.
3. Per gate: exit code (in the slow groups also 1 from the count checks: the wider model has
   more parameters and MACs), the latency verdict (outcome, p10 ratio, reason), the attempts, the
   wall time; appended to OUT/runs.jsonl as each gate ends (a re-run resumes after the last one).
   OUT/summary.json and OUT/summary.md: regression / inconclusive / pass per group, the ratios,
   seconds per gate (median and max).

Usage:
    python benchmarks/contention_calibration.py --out results/contention-calibration
    python benchmarks/contention_calibration.py --out results/contention-calibration/x1.0 \
        --groups quiet_slow --slow rexnet_x1.0      # a smaller genuine slowdown
    python benchmarks/contention_calibration.py --out results/contention-calibration --summary-only
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPEC = "py:benchmarks/gate_envnet.py:build"
GROUPS = ("quiet_aa", "busy_aa", "quiet_slow", "busy_slow")
BUSY_LOOP = (
    "import os, sys, time\n"
    "os.sched_setaffinity(0, {int(sys.argv[1])})\n"
    "end = time.monotonic() + float(sys.argv[2])\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
)
_LOOPS: list[subprocess.Popen] = []


def start_loops(seconds: float) -> None:
    """One spinning process per core (the first two usable cores), each ending by itself after
    `seconds` at the latest."""
    cores = sorted(os.sched_getaffinity(0))[:2]
    for core in cores:
        _LOOPS.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(core), str(seconds)]))


def stop_loops() -> None:
    while _LOOPS:
        loop = _LOOPS.pop()
        if loop.poll() is None:
            loop.terminate()
        try:
            loop.wait(timeout=5)
        except subprocess.TimeoutExpired:
            loop.kill()
            loop.wait()


def _on_signal(signum: int, frame: Any) -> None:
    stop_loops()
    sys.exit(128 + signum)


def rexbench(args: list[str], model: str) -> tuple[int, str, str, float]:
    env = {**os.environ, "CALIB_MODEL": model}
    start = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "rexbench", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=HERE.parent,
    )
    return done.returncode, done.stdout, done.stderr, time.time() - start


def pressure() -> float | None:
    """PSI cpu some avg10 (%), or None."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return None
    return float(dict(kv.split("=") for kv in line.split()[1:])["avg10"])


def save_baseline(args: argparse.Namespace, out: Path) -> None:
    deadline = time.time() + 60 * args.wait_minutes
    while True:
        while (pressure() or 0) > args.quiet_psi and time.time() < deadline:
            print(f"waiting for a quiet machine: PSI cpu some avg10 {pressure()}%", flush=True)
            time.sleep(15)
        code, _, err, secs = rexbench(
            [
                "baseline",
                "save",
                SPEC,
                "--config",
                "eager",
                "--threads",
                str(args.threads),
                "--runs",
                str(args.runs),
                "--warmup",
                str(args.warmup),
                "--dir",
                str(out / "baselines"),
                *(["--force"] if args.force_baseline else []),
            ],
            args.model,
        )
        print(f"baseline save: exit {code} in {secs:.0f} s", flush=True)
        if code == 0:
            return
        if "contended" not in err or time.time() > deadline:
            sys.exit(f"baseline save failed:\n{err[-2000:]}")
        time.sleep(15)


def one_gate(args: argparse.Namespace, out: Path, group: str, index: int) -> dict[str, Any]:
    model = args.model if group.endswith("aa") else args.slow
    busy = group.startswith("busy")
    if busy:
        start_loops(args.busy_seconds)
        time.sleep(args.busy_lead)
    try:
        code, stdout, err, secs = rexbench(
            ["gate", SPEC, "--baseline", str(out / "baselines"), "--json"], model
        )
    finally:
        stop_loops()
    entry: dict[str, Any] = {
        "group": group,
        "index": index,
        "model": model,
        "exit": code,
        "seconds": secs,
        "busy": busy,
    }
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        entry["error"] = err[-1000:]
        return entry
    latency = [v for v in report["verdicts"] if v["config"] != "counts"]
    # the wider model also changes params and MACs: those count checks fail too (exit 1)
    entry["count_regressions"] = sum(
        v["outcome"] == "regression" for v in report["verdicts"] if v["config"] == "counts"
    )
    if latency:
        v = latency[0]
        entry.update(
            outcome=v["outcome"],
            ratio=v["ratio"],
            reason=v["reason"],
            attempts=v["details"].get("attempts", []),
            p_value=v["p_value"],
        )
    return entry


def measure(args: argparse.Namespace, out: Path) -> None:
    log = out / "runs.jsonl"
    done = set()
    if log.exists():
        done = {(e["group"], e["index"]) for e in map(json.loads, log.read_text().splitlines())}
    if not (out / "baselines").exists():
        save_baseline(args, out)
    t0 = time.time()
    for i in range(1, args.repeats + 1):
        for group in GROUPS:
            skip = group not in args.groups.split(",") or (group, i) in done
            if skip or (group == "busy_slow" and i > args.busy_slow_repeats):
                continue
            entry = one_gate(args, out, group, i)
            with log.open("a") as fh:
                fh.write(json.dumps(entry) + "\n")
            print(
                f"{group}-{i:02d}: exit {entry['exit']}, {entry.get('outcome')}, ratio "
                f"{entry.get('ratio')}, {len(entry.get('attempts', []))} attempt(s), "
                f"{entry['seconds']:.0f} s (elapsed {(time.time() - t0) / 60:.1f} min)",
                flush=True,
            )


def summarize(out: Path) -> dict[str, Any]:
    entries = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    summary: dict[str, Any] = {}
    for group in GROUPS:
        runs = [e for e in entries if e["group"] == group]
        if not runs:
            continue
        ratios = [e["ratio"] for e in runs if e.get("ratio") is not None]
        secs = [e["seconds"] for e in runs]
        summary[group] = {
            "n": len(runs),
            **{
                o: sum(e.get("outcome") == o for e in runs)
                for o in ("regression", "inconclusive", "pass")
            },
            "contended_inconclusive": sum("contended" in (e.get("reason") or "") for e in runs),
            "attempts": [len(e.get("attempts", [])) for e in runs],
            "ratio_min_median_max": [min(ratios), statistics.median(ratios), max(ratios)]
            if ratios
            else None,
            "seconds_median": statistics.median(secs),
            "seconds_max": max(secs),
        }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = [
        "| group | runs | regression | inconclusive (contended) | pass | p10 ratio min - median - max | attempts | s per gate (median / max) |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for group, s in summary.items():
        r = s["ratio_min_median_max"]
        ratio = "-" if r is None else f"{r[0]:.3f} - {r[1]:.3f} - {r[2]:.3f}"
        attempts = ", ".join(f"{k}: {s['attempts'].count(k)}" for k in sorted(set(s["attempts"])))
        lines.append(
            f"| {group} | {s['n']} | {s['regression']} | {s['inconclusive']} "
            f"({s['contended_inconclusive']}) | {s['pass']} | {ratio} | {attempts} | "
            f"{s['seconds_median']:.0f} / {s['seconds_max']:.0f} |"
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/contention-calibration")
    parser.add_argument("--model", default="rexnet_x0.9")
    parser.add_argument("--slow", default="rexnet_x1.1", help="the genuinely slower model")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--groups", default=",".join(GROUPS), help="a subset of " + ",".join(GROUPS)
    )
    parser.add_argument("--busy-slow-repeats", type=int, default=6)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--busy-seconds", type=float, default=300.0, help="hard loop lifetime")
    parser.add_argument("--busy-lead", type=float, default=2.0, help="loops run this long first")
    parser.add_argument("--quiet-psi", type=float, default=2.0, help="baseline: PSI avg10 below")
    parser.add_argument("--wait-minutes", type=float, default=30.0)
    parser.add_argument(
        "--force-baseline", action="store_true", help="trial runs: keep a contended baseline"
    )
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atexit.register(stop_loops)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if not args.summary_only:
        measure(args, out)
    summarize(out)


if __name__ == "__main__":
    main()
