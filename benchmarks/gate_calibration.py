"""Calibrate the latency gate: A/A runs must not fail, genuine slowdowns must.

Method (docs/gate.md):

1. Wait (up to --wait-minutes) for a quiet machine (1-min load average below --quiet-load), then
   save a baseline of MODEL with the real command:
   `rexbench baseline save MODEL --config eager --threads T --runs R --dir OUT/baselines`.
2. REPEATS rounds, each a fresh process per measurement (as a CI job would be), in this order:
   - "aa":      `rexbench profile MODEL` with the baseline's configuration (unchanged model),
   - "wider_X": `rexbench profile X` for each X of --slower (default rexnet_x1.1 and rexnet_x1.3:
                +21% and +66% multiply-adds over rexnet_x1.0), same configuration: genuine
                slowdowns (how much slower each is on this CPU is what the ratios show),
   - "threads": `rexbench profile MODEL --threads T/2` (half the threads), unless --no-threads.
   Alternating the kinds spreads the machine's drift over all of them alike.
3. Judge every run against the baseline with the gate's own rule (`gate_eval.latency_verdicts`,
   the function `rexbench gate` calls), under the default checks and a grid of thresholds and
   alphas; anchor-normalised and raw. Print the counts of regression / inconclusive / pass per kind,
   the distribution of the ratios, and the load average seen during the runs.

Usage:
    python benchmarks/gate_calibration.py [--out results/gate-calibration] [--repeats 20] [--runs 300]
    python benchmarks/gate_calibration.py --analyse-only --out results/gate-calibration
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rexbench.gate import checks as gate
from rexbench.gate.evaluate import GateOptions, busy, load_guard, samples_of
from rexbench.records.store import load_records

THRESHOLDS = (0.05, 0.08, 0.10, 0.12, 0.15)
ALPHAS = (0.01, 0.05)
STATS = ("median", "p25", "p10")


def rexbench(*args: str) -> None:
    """Run the real CLI in a fresh process; stop on failure."""
    cmd = [sys.executable, "-m", "rexbench", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")


def wait_quiet(limit: float, minutes: float) -> None:
    """A baseline is saved on a quiet machine (as docs/gate.md asks users to): wait until the
    1-min load average is below `limit`, at most `minutes`, then go on whatever it is."""
    deadline = time.time() + 60 * minutes
    while os.getloadavg()[0] >= limit and time.time() < deadline:
        print(
            f"waiting for a quiet machine: 1-min load {os.getloadavg()[0]:.2f} >= {limit}",
            flush=True,
        )
        time.sleep(20)
    print(f"1-min load {os.getloadavg()[0]:.2f} before the baseline", flush=True)


def measure(args: argparse.Namespace) -> None:
    out = Path(args.out)
    common = ["--config", "eager", "--runs", str(args.runs), "--warmup", str(args.warmup)]
    log: list[dict[str, Any]] = []
    t0 = time.time()
    if not (out / "baselines").exists():
        wait_quiet(args.quiet_load, args.wait_minutes)
        print(f"baseline: {args.model}, threads {args.threads}, {args.runs} runs", flush=True)
        rexbench(
            "baseline",
            "save",
            args.model,
            *common,
            "--threads",
            str(args.threads),
            "--dir",
            str(out / "baselines"),
        )
    kinds = {"aa": [args.model, "--threads", str(args.threads)]}
    for spec in args.slower:
        kinds[f"wider_{spec}"] = [spec, "--threads", str(args.threads)]
    if not args.no_threads:
        kinds["threads"] = [args.model, "--threads", str(max(1, args.threads // 2))]
    for i in range(1, args.repeats + 1):
        for kind, what in kinds.items():
            folder = out / "runs" / f"{kind}-{i:02d}"
            if folder.exists():
                continue
            before = os.getloadavg()[0]
            start = time.time()
            rexbench("profile", *what, *common, "--out", str(folder))
            log.append(
                {
                    "run": folder.name,
                    "load_before": before,
                    "load_after": os.getloadavg()[0],
                    "seconds": time.time() - start,
                }
            )
            print(
                f"{folder.name}: {time.time() - start:.0f} s, load {before:.2f} -> "
                f"{log[-1]['load_after']:.2f} (elapsed {(time.time() - t0) / 60:.1f} min)",
                flush=True,
            )
    (out / "load.json").write_text(json.dumps(log, indent=2))


def judge(base: Any, cur: Any, stat: str, alpha: float, anchored: bool) -> gate.Verdict:
    """The gate's latency verdict of one run (at +10%; other limits follow from ratio, CI and p)."""
    check = gate.parse_check(f"latency.{stat}:+10%")
    return gate.compare_latency(
        check,
        samples_of(base, anchored),
        samples_of(cur, anchored),
        alpha=alpha,
        model=cur.model.spec,
        config=cur.run.label,
    )


def outcomes(
    verdicts: list[gate.Verdict], threshold: float, alpha: float, busy: list[tuple[Any, Any]]
) -> dict[str, int]:
    """Regression / inconclusive / pass counts under limit 1 + threshold, by the gate's own rule
    (`gate.latency_outcome`, then `gate_eval.load_guard` with each run's busy flags)."""
    counts = dict.fromkeys(gate.OUTCOMES, 0)
    for v, (busy_base, busy_cur) in zip(verdicts, busy, strict=True):
        if v.ratio is None:
            counts[gate.INCONCLUSIVE] += 1
            continue
        low, high = v.ci
        outcome = gate.latency_outcome(
            v.ratio, low, high, v.p_value, limit=1 + threshold, alpha=alpha
        )
        counts[load_guard(outcome, busy_base, busy_cur)] += 1
    return counts


def analyse(args: argparse.Namespace) -> dict[str, Any]:
    from rexbench.gate.evaluate import latency_verdicts

    out = Path(args.out)
    (base,) = load_records(out / "baselines")
    runs: dict[str, list[Any]] = {}
    for folder in sorted((out / "runs").iterdir()):
        runs.setdefault(folder.name.rsplit("-", 1)[0], []).extend(load_records(folder))
    options = GateOptions(tuple(gate.merge_checks(gate.DEFAULT_CHECKS)))
    result: dict[str, Any] = {"baseline": _describe(base), "kinds": {}}
    print(f"baseline {base.model.spec} {base.run.label}: {_describe(base)}")
    for kind, records in runs.items():
        entry: dict[str, Any] = {"n": len(records), "ratios": {}, "grid": {}, "grid_no_guard": {}}
        defaults = [
            latency_verdicts(options.latency_checks, base, r, options)[0][0] for r in records
        ]
        entry["default_rule"] = {o: sum(v.outcome == o for v in defaults) for o in gate.OUTCOMES}
        flags = [(busy(base), busy(r)) for r in records]
        none = [(None, None)] * len(records)
        entry["busy_runs"] = sum(bool(cur) for _, cur in flags)
        for stat in STATS:
            for anchored in (True, False):
                for alpha in ALPHAS:
                    key = f"{stat} {'anchor' if anchored else 'raw'} alpha={alpha:g}"
                    vs = [judge(base, r, stat, alpha, anchored) for r in records]
                    entry["ratios"][key] = [v.ratio for v in vs]
                    entry["grid"][key] = {
                        f"+{t:.0%}": outcomes(vs, t, alpha, flags) for t in THRESHOLDS
                    }
                    entry["grid_no_guard"][key] = {
                        f"+{t:.0%}": outcomes(vs, t, alpha, none) for t in THRESHOLDS
                    }
        loads = [x for r in records for x in _loads(r)]
        entry["loadavg_1min"] = _spread(loads) if loads else None
        entry["runs"] = [_describe(r) for r in records]
        result["kinds"][kind] = entry
        _print_kind(kind, entry)
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    return result


def _loads(record: Any) -> list[float]:
    snaps = (record.timing.device_start or {}, record.timing.device_end or {})
    return [s["loadavg"][0] for s in snaps if s.get("loadavg")]


def _describe(record: Any) -> dict[str, Any]:
    model = np.median(record.timing.samples_ns) / 1e6
    anchor = np.median(record.timing.anchor_ns) / 1e6 if record.timing.anchor_ns else None
    return {
        "spec": record.model.spec,
        "threads": record.timing.backend.get("threads"),
        "median_ms": round(float(model), 3),
        "anchor_ms": anchor and round(float(anchor), 3),
        "iqr_over_median": round(record.summary.get("noise", float("nan")), 4),
        "created": record.created,
    }


def _spread(values: list[float]) -> dict[str, float]:
    x = np.asarray(values, float)
    return {"min": float(x.min()), "median": float(np.median(x)), "max": float(x.max())}


def _print_kind(kind: str, entry: dict[str, Any]) -> None:
    d = entry["default_rule"]
    print(
        f"\n== {kind}: {entry['n']} runs; default rule ({gate.DEFAULT_CHECKS[-1]}, alpha "
        f"{gate.ALPHA:g}): {d['regression']} regression, {d['inconclusive']} inconclusive, "
        f"{d['pass']} pass; {entry['busy_runs']} run(s) on a busy machine"
    )
    if entry["loadavg_1min"]:
        la = entry["loadavg_1min"]
        print(
            f"   1-min load average at start/end of the runs: min {la['min']:.2f}, "
            f"median {la['median']:.2f}, max {la['max']:.2f}"
        )
    for title, grid in (("with the busy-machine guard", "grid"), ("without it", "grid_no_guard")):
        head = "".join(f"{t:>12}" for t in entry[grid][next(iter(entry[grid]))])
        print(f"   {title}: regression/inconclusive/pass per threshold")
        print(f"   {'statistic, normalisation':<28}{'ratio min-med-max':>21}  {head}")
        for key, row in entry[grid].items():
            r = _spread([x for x in entry["ratios"][key] if x is not None] or [float("nan")])
            spread = f"{r['min']:.3f}-{r['median']:.3f}-{r['max']:.3f}"
            cells = "".join(
                f"{c['regression']:>6}/{c['inconclusive']:>2}/{c['pass']:>2}" for c in row.values()
            )
            print(f"   {key:<28}{spread:>21}  {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/gate-calibration")
    parser.add_argument("--model", default="rexnet_x1.0")
    parser.add_argument(
        "--slower", nargs="+", default=["rexnet_x1.1", "rexnet_x1.3"], help="wider variants"
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-threads", action="store_true", help="skip the half-threads runs")
    parser.add_argument(
        "--quiet-load", type=float, default=1.0, help="baseline waits for load below"
    )
    parser.add_argument("--wait-minutes", type=float, default=90.0)
    parser.add_argument("--analyse-only", action="store_true")
    args = parser.parse_args()
    if not args.analyse_only:
        measure(args)
    analyse(args)


if __name__ == "__main__":
    main()
