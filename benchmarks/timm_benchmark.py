"""Does `rexbench profile timm:MODEL --config eager --allocator system` read what timm's own
benchmark.py reads for the same model? Both eager fp32, batch 1, on the CPU, at the same threads,
under glibc's default allocator policy (the one a user's own PyTorch process runs under), each in a
fresh process, alternated --pairs times (the machine's speed moves between processes, so one pair
says little).

timm's benchmark.py is not in timm's package: pass a checkout's (`--timm-benchmark PATH`, from
https://github.com/huggingface/pytorch-image-models). It times `--num-bench-iter` calls after
`--num-warm-iter` and prints their mean ("ms/step"); rexbench's mean of its timed calls is compared
with it, and its median is printed beside it. Run in the external-models environment (torch with
torchvision and timm, docs/external-models.md).

Usage (on a quiet machine):
    python benchmarks/timm_benchmark.py --timm-benchmark ../pytorch-image-models/benchmark.py \
        --model rexnet_100 --pairs 3 --out results/worker-isolation/timm-benchmark
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

STEP = re.compile(r"([0-9.]+) ms/step")
STEADY = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")


def timm_ms(args: argparse.Namespace) -> float:
    """timm's mean ms per call, in a fresh process under glibc's default policy."""
    env = {k: v for k, v in os.environ.items() if k not in STEADY}
    env |= {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    command = [sys.executable, str(args.timm_benchmark), "--model", args.model, "--device", "cpu"]
    command += ["-b", "1", "--bench", "inference", "--num-warm-iter", str(args.warmup)]
    command += ["--num-bench-iter", str(args.runs)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return float(STEP.findall(done.stdout + done.stderr)[-1])


def rexbench_ms(args: argparse.Namespace) -> dict[str, float]:
    """rexbench's mean and median ms per call (its record), --allocator system."""
    from rexbench.records.store import load_records

    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "rexbench", "profile", f"timm:{args.model}"]
        command += ["--config", "eager", "--threads", str(args.threads), "--allocator", "system"]
        command += ["--runs", str(args.runs), "--warmup", str(args.warmup), "--out", out]
        subprocess.run(command, capture_output=True, text=True, check=True)
        (record,) = load_records(Path(out))
        return {"mean": record.summary["mean"] / 1e6, "median": record.summary["median"] / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timm-benchmark", type=Path, required=True)
    parser.add_argument("--model", default="rexnet_100")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    pairs = []
    for pair in range(args.pairs):
        arms = ("rexbench", "timm") if pair % 2 == 0 else ("timm", "rexbench")
        row: dict[str, object] = {}
        for arm in arms:
            row[arm] = rexbench_ms(args) if arm == "rexbench" else timm_ms(args)
        row["ratio"] = row["rexbench"]["mean"] / row["timm"]  # type: ignore[index]
        pairs.append(row)
        print(f"pair {pair}: {json.dumps(row)}", flush=True)
    ratios = [p["ratio"] for p in pairs]
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) for k, v in vars(args).items() if k != "timm_benchmark"}
    summary = {"settings": settings, "pairs": pairs, "ratio_median": statistics.median(ratios)}
    (args.out / "timm_benchmark.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"rexbench mean / timm benchmark.py mean: median {statistics.median(ratios):.3f} "
        f"[{min(ratios):.3f}-{max(ratios):.3f}] over {len(ratios)} pairs"
    )


if __name__ == "__main__":
    main()
