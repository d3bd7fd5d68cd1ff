"""Which drift anchor moves with a multi-threaded model when the hypervisor moves the virtual CPUs?

One process, the given thread count, the steady allocator that `rexbench profile` applies. Every
round times a few calls of each workload, back to back:

* the model (default rexnet_x0.9, eager, 224x224, batch 1) at --threads;
* the drift anchor of version 1 (`conv4`: four convolutions on 16x56x56, always one thread);
* the mobile anchor (rexbench.measure.timing.anchor.mobile_network: a small inverted-residual net) at
  each --resolutions, at --threads;
* the placement probe's memory stream at 1 and at --threads (rexbench.measure.machine.placement).

Rounds are grouped into blocks of --block rounds (a few seconds each); a block's reading of a
workload is the median of its calls. Blocks are split into the model's fast and slow states at the
largest gap in the model's block medians (the states differ by 20-30%, the noise within one by a few
%). For each anchor: the model / anchor ratio's median in each state and its change between them
(what a gate would misread as a regression or a speed-up), and the spread of the ratio within a
state (a noisy anchor widens the gate's interval).

Usage:
    python benchmarks/anchor_placement.py --minutes 8 --out results/anchor-placement
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime
from pathlib import Path


def _timed(fn, calls: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times)


def workloads(args: argparse.Namespace) -> dict[str, tuple[object, int]]:
    """name -> (zero-argument callable, thread count)."""
    import torch

    from rexbench.measure.timing import anchor
    from rexbench.models.factory import create_model

    torch.manual_seed(0)
    model = create_model(args.model)
    x = torch.randn(1, 3, 224, 224)
    out: dict[str, tuple[object, int]] = {"model": (lambda: model(x), args.threads)}
    with torch.random.fork_rng(devices=[]):  # version 1's anchor: conv4 at one thread
        torch.manual_seed(anchor.SEED)
        conv4, x4 = anchor.conv4_network().eval(), torch.randn(1, *anchor.CUDA_INPUT_CHW)
    out["conv4@1"] = (lambda: conv4(x4), 1)
    for res in args.resolutions:
        net = anchor.mobile_network().eval()
        xin = torch.randn(1, 3, res, res)
        out[f"mobile{res}@{args.threads}"] = (lambda net=net, xin=xin: net(xin), args.threads)
    return out


def run(args: argparse.Namespace) -> dict:
    import torch

    from rexbench.measure.machine.allocator import steady_allocator
    from rexbench.measure.machine.placement import Probe

    steady_allocator()
    work = workloads(args)
    probe = Probe(args.threads)
    rows: list[dict[str, float]] = []
    with torch.inference_mode():
        for _name, (fn, threads) in work.items():
            torch.set_num_threads(threads)
            _timed(fn, 20)
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() < end:
            row: dict[str, float] = {"t": time.time()}
            for name, (fn, threads) in work.items():
                torch.set_num_threads(threads)
                row[name] = _timed(fn, args.calls)
            probe.sample()
            row["stream1"], row["streamN"] = probe.one[-1], probe.many[-1]
            rows.append(row)
    return {"rows": rows}


def blocks(rows: list[dict[str, float]], size: int) -> list[dict[str, float]]:
    out = []
    for i in range(0, len(rows) - size + 1, size):
        chunk = rows[i : i + size]
        out.append({k: statistics.median(r[k] for r in chunk) for k in chunk[0]})
    return out


def analyse(data: dict, block: int) -> dict:
    bl = blocks(data["rows"], block)
    model = sorted(b["model"] for b in bl)
    gaps = [(model[i + 1] / model[i], i) for i in range(len(model) - 1)]
    gap, at = max(gaps)
    cut = (model[at] + model[at + 1]) / 2
    fast = [b for b in bl if b["model"] <= cut]
    slow = [b for b in bl if b["model"] > cut]
    result = {
        "blocks": len(bl),
        "fast_blocks": len(fast),
        "slow_blocks": len(slow),
        "largest_gap": gap,
        "anchors": {},
    }
    names = [k for k in bl[0] if k not in ("t", "model")]
    for name in names:
        entry = {}
        for state, group in (("fast", fast), ("slow", slow)):
            if not group:
                continue
            ratios = [b["model"] / b[name] for b in group]
            entry[state] = {
                "model_ms": statistics.median(b["model"] for b in group) / 1e6,
                "anchor_ms": statistics.median(b[name] for b in group) / 1e6,
                "ratio": statistics.median(ratios),
                "ratio_spread": (max(ratios) - min(ratios)) / statistics.median(ratios),
            }
        if "fast" in entry and "slow" in entry:
            entry["ratio_change"] = entry["slow"]["ratio"] / entry["fast"]["ratio"] - 1
        result["anchors"][name] = entry
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="rexnet_x0.9")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resolutions", type=int, nargs="+", default=[64, 96])
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--minutes", type=float, default=8)
    p.add_argument("--block", type=int, default=40)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = run(args)
    data["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    data["analysis"] = analyse(data, args.block)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    (args.out / f"run-{stamp}.json").write_text(json.dumps(data, indent=1))
    print(json.dumps(data["analysis"], indent=1))


if __name__ == "__main__":
    main()
