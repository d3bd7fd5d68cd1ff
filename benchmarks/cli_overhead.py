"""Does `rexbench profile` slow what it measures? Its median against a minimal loop in another process.

Two processes time the same model (benchmarks/plain_net.py, a ReXNet-1.0-sized network in plain
torch):

* cli:  `python -m rexbench profile py:benchmarks/plain_net.py:build --config C --threads T
        --runs R --warmup W --out TMP` (the real command; its record gives the median and the
        wall-clock window of its measurement);
* loop: benchmarks/plain_loop.py (no rexbench import: a clock around each call, same threads, same
        warm-up, same input), under the allocator policy rexbench applies to itself
        (rexbench.measure.machine.allocator: glibc's MALLOC_MMAP_MAX_=0 and MALLOC_TRIM_THRESHOLD_ set in
        its environment before it starts).

Both load the same weights: a seeded state dict written once per run (OUT/weights.pt, removed at the
end), with the BatchNorm statistics rexbench gives a model without a checkpoint; the CLI gets it
with --weights. With --control a second loop takes the CLI's place: the spread of the harness itself.

Why not one process after the other: this machine's speed for a 2-thread model moves by 20-30% for
tens of seconds at a time (seen here: 12 ms then 16 ms within one loop process, the 1-thread drift
anchor unchanged, no steal time, no CPU pressure), so two processes run one after the other
measure different machines, and 15 such pairs gave a bootstrap 95% interval of 0.82-1.07 for the ratio.

So each pair runs both processes at once, taking turns: every --slice seconds the running one is
stopped (SIGSTOP to its process group, compile workers included) and the other continued, until the
CLI exits. The loop times until told to stop, each sample with its wall-clock end; the loop samples
that ended inside the CLI's measurement window (its record's device_start / device_end times) are
the loop's median. Both arms are thereby measured in alternating half-second slices of the same
few seconds; a sample that straddles a pause (one per slice, in either arm) is far too long and only
moves the median by a rank or two. With --order, the arm that starts running alternates per pair.

The CLI passes when the median over pairs of cli median / loop median is within 3% of 1; the median
ratio gets the distribution-free interval of rexbench.stats.median_ci (at least 95% coverage). Per pair: medians, their ratio, the loop samples in the
window, minor page faults per timed call and thread counts, in OUT/<config>.json; OUT/summary.md
has one row per configuration measured so far.

Usage:
    python benchmarks/cli_overhead.py --config eager --pairs 10 --runs 400 --out results/cli-overhead
    python benchmarks/cli_overhead.py --config compile --pairs 10 --runs 400 --out results/cli-overhead
    python benchmarks/cli_overhead.py --config eager --pairs 10 --control --out results/cli-overhead
    python benchmarks/cli_overhead.py --config eager --pairs 8 --control --arm profile_late --out OUT
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from rexbench.measure.machine.allocator import ENV_VARS
from rexbench.stats import median_ci

HERE = Path(__file__).resolve().parent
SPEC = "py:benchmarks/plain_net.py:build"
TOLERANCE = 0.03


def write_weights(path: Path) -> None:
    """One set of weights for both arms: plain_net seeded, then given the BatchNorm statistics that
    `rexbench profile` gives a model without a checkpoint (rexbench.measure.checks.parity)."""
    import torch

    from rexbench.measure.checks.parity import nontrivial_weights

    sys.path.insert(0, str(HERE))
    from plain_net import build

    torch.manual_seed(0)
    model = build()
    nontrivial_weights(model)
    torch.save(model.state_dict(), path)


def cli_command(args: argparse.Namespace, out: Path, weights: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rexbench",
        "profile",
        SPEC,
        "--config",
        args.config,
        "--threads",
        str(args.threads),
        "--runs",
        str(args.runs),
        "--warmup",
        str(args.warmup),
        "--weights",
        str(weights),
        "--out",
        str(out),
    ]


def loop_command(args: argparse.Namespace, stop: Path, weights: Path) -> list[str]:
    cmd = [
        sys.executable,
        str(HERE / "plain_loop.py"),
        "--threads",
        str(args.threads),
        "--warmup",
        str(args.warmup),
        "--until",
        str(stop),
        "--weights",
        str(weights),
    ]
    return cmd + (["--compile"] if args.config.startswith("compile") else [])


def _signal(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has just ended
        os.killpg(proc.pid, sig)


def take_turns(
    cli: subprocess.Popen, loop: subprocess.Popen, slice_s: float, cli_first: bool
) -> int:
    """Let one process run at a time, swapping every slice_s, until the CLI exits; the swaps."""
    running, paused = (cli, loop) if cli_first else (loop, cli)
    _signal(paused, signal.SIGSTOP)
    swaps = 0
    while cli.poll() is None:
        time.sleep(slice_s)
        _signal(running, signal.SIGSTOP)
        _signal(paused, signal.SIGCONT)
        running, paused = paused, running
        swaps += 1
    _signal(loop, signal.SIGCONT)
    return swaps


def _epoch_ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1e9)


def control_command(args: argparse.Namespace, weights: Path) -> list[str]:
    """--control: a second minimal loop in the CLI's place, its --runs calls and then it exits;
    --arm STEP: the same loop after one step of a profile (benchmarks/steps_loop.py, eager only)."""
    script = [str(HERE / "steps_loop.py"), args.arm] if args.arm else [str(HERE / "plain_loop.py")]
    cmd = [
        sys.executable,
        *script,
        "--threads",
        str(args.threads),
        "--warmup",
        str(args.warmup),
        "--runs",
        str(args.runs),
        "--weights",
        str(weights),
    ]
    return cmd + (["--compile"] if args.config.startswith("compile") and not args.arm else [])


def _first_arm(
    args: argparse.Namespace, out: Path, printed: str
) -> tuple[list[float], int, int, dict]:
    """The first arm's samples, its measurement window (epoch ns) and what else it reports."""
    if args.control:
        data = json.loads(printed.strip().splitlines()[-1])
        start = data["ends_ns"][0] - data["samples_ns"][0]
        return (
            data["samples_ns"],
            start,
            data["ends_ns"][-1],
            {"threads": data["threads"], "faults_per_call": data["faults_per_call"]},
        )
    (path,) = out.rglob("*.json")
    record = json.loads(path.read_text())
    contention = record["summary"].get("contention", {})
    extra = {
        "faults_per_call": contention.get("faults_per_call"),
        "contention": contention,
        "threads": contention.get("threads_max"),
        "allocator": record["env"].get("allocator"),
    }
    start = _epoch_ns(record["timing"]["device_start"]["time"])
    end = _epoch_ns(record["timing"]["device_end"]["time"])
    return record["timing"]["samples_ns"], start, end, extra


def run_pair(args: argparse.Namespace, cli_first: bool, weights: Path) -> dict:
    """One CLI process (with --control: a second loop) and one loop process, taking turns; the
    CLI's median and the loop's median over the CLI's measurement window."""
    env = {**os.environ, **ENV_VARS}
    with tempfile.TemporaryDirectory() as tmp:
        stop, out, log = Path(tmp) / "stop", Path(tmp) / "out", Path(tmp) / "cli.log"
        first_cmd = (
            control_command(args, weights) if args.control else cli_command(args, out, weights)
        )
        with log.open("w") as err:
            cli = subprocess.Popen(
                first_cmd,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                cwd=HERE.parent,
                start_new_session=True,
                env=env if args.control else None,
            )
            loop = subprocess.Popen(
                loop_command(args, stop, weights),
                stdout=subprocess.PIPE,
                text=True,
                env=env,
                cwd=HERE.parent,
                start_new_session=True,
            )
            try:
                swaps = take_turns(cli, loop, args.slice, cli_first)
            finally:
                stop.touch()
                _signal(loop, signal.SIGCONT)
            cli_out, loop_out = cli.communicate()[0], loop.communicate()[0]
        if cli.returncode != 0 or loop.returncode != 0:
            sys.exit(
                f"failed (cli {cli.returncode}, loop {loop.returncode}):\n{log.read_text()[-2000:]}"
            )
        samples, start, end, extra = _first_arm(args, out, cli_out)
    data = json.loads(loop_out.strip().splitlines()[-1])
    window = [
        s for s, e in zip(data["samples_ns"], data["ends_ns"], strict=True) if start <= e <= end
    ]
    cli_median = statistics.median(samples)
    loop_median = statistics.median(window)
    return {
        "first": "cli" if cli_first else "loop",
        "swaps": swaps,
        "cli": {"median_ns": cli_median, **extra},
        "loop": {
            "median_ns": loop_median,
            "window_samples": len(window),
            "faults_per_call": data["faults_per_call"],
            "threads": data["threads"],
        },
        "ratio": cli_median / loop_median,
    }


def write_summary(out: Path) -> None:
    """OUT/summary.md: one row per configuration's JSON in OUT."""
    rows = [
        "| config | pairs | median ratio cli / loop | interval (coverage) | cli medians (ms) | "
        "loop medians (ms) | faults / call cli, loop | verdict |",
        "|" + " --- |" * 8,
    ]
    for path in sorted(out.glob("*.json")):
        data = json.loads(path.read_text())
        pairs = data["pairs"]
        low, high = data["interval"]
        coverage = data["coverage"]
        span = {arm: [p[arm]["median_ns"] / 1e6 for p in pairs] for arm in ("cli", "loop")}
        faults = [
            statistics.median(p[arm]["faults_per_call"] or 0 for p in pairs)
            for arm in ("cli", "loop")
        ]
        rows.append(
            f"| {data['config']} | {len(pairs)} | {data['median_ratio']:.3f} | "
            f"{low:.3f}-{high:.3f} ({coverage:.1%}) | {min(span['cli']):.2f}-{max(span['cli']):.2f} | "
            f"{min(span['loop']):.2f}-{max(span['loop']):.2f} | {faults[0]:.2f}, {faults[1]:.2f} "
            f"| {data['verdict']} |"
        )
    (out / "summary.md").write_text("\n".join(rows) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="eager", choices=["eager", "compile"])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--slice", type=float, default=0.5, help="seconds per turn")
    parser.add_argument("--out", default="results/cli-overhead")
    parser.add_argument(
        "--control",
        action="store_true",
        help="a second loop in the CLI's place: the harness's own "
        "spread (written as CONFIG-control.json)",
    )
    parser.add_argument(
        "--arm",
        help="with --control: the loop after this step of a profile "
        "(one of benchmarks/steps_loop.py's STEPS)",
    )
    args = parser.parse_args()
    if args.arm and (not args.control or args.config != "eager"):
        parser.error("--arm needs --control and --config eager")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = []
    t0 = time.time()
    weights = out / "weights.pt"
    write_weights(weights)
    for i in range(args.pairs):
        pair = {"pair": i + 1, **run_pair(args, i % 2 == 0, weights.resolve())}
        pairs.append(pair)
        heap = (pair["cli"].get("allocator") or {}).get("heap_before_warmup") or {}
        holes = f", heap holes {heap['holes_bytes'] / 2**20:.1f} MB" if heap else ""
        print(
            f"pair {i + 1}: cli {pair['cli']['median_ns'] / 1e6:.2f} ms{holes}, loop "
            f"{pair['loop']['median_ns'] / 1e6:.2f} ms ({pair['loop']['window_samples']} samples "
            f"in the window), ratio {pair['ratio']:.3f} ({(time.time() - t0) / 60:.1f} min)",
            flush=True,
        )
    ratios = [p["ratio"] for p in pairs]
    ratio = statistics.median(ratios)
    low, high, coverage = median_ci(ratios)
    interval = (low, high)
    verdict = "PASS" if abs(ratio - 1) <= TOLERANCE else "FAIL"
    label = f"{args.config}-control" if args.control else args.config
    label += f"-{args.arm}" if args.arm else ""
    summary = {
        "config": label,
        "threads": args.threads,
        "runs": args.runs,
        "warmup": args.warmup,
        "slice_s": args.slice,
        "median_ratio": ratio,
        "interval": interval,
        "coverage": coverage,
        "tolerance": TOLERANCE,
        "verdict": verdict,
        "pairs": pairs,
    }
    (out / f"{label}.json").write_text(json.dumps(summary, indent=2))
    weights.unlink()
    write_summary(out)
    print(
        f"{label}: median ratio cli / loop = {ratio:.3f} ({coverage:.1%} interval "
        f"{low:.3f}-{high:.3f}) over {len(pairs)} pairs: {verdict}"
    )


if __name__ == "__main__":
    main()
