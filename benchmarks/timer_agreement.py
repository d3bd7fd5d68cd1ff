"""Does rexbench's median agree with torch.utils.benchmark.Timer on the same model?

Both time the same prepared model in the same process, interleaved in small rounds (rexbench's
chunk, then Timer's, order swapped every round) so machine drift hits both alike; Timer is given
one call per `timeit` so that both medians are medians of single-call times. The comparison is the
one the GPU check makes (rexbench.measure.timing.agreement). Prints both, their ratio and whether
they agree within 3%.

    python benchmarks/timer_agreement.py rexnet_x1.0 --config eager --rounds 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="rexnet_x1.0")
    parser.add_argument("--config", default="eager", help="a RunConfig preset (default: eager)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=10, help="calls per tool per round")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--resolution", type=int, default=None)
    args = parser.parse_args(argv)

    import torch

    from rexbench import stats
    from rexbench.measure.backends.prepare import prepare
    from rexbench.measure.config import RunConfig
    from rexbench.measure.timing import agreement as agree
    from rexbench.measure.timing.devices import device_ops
    from rexbench.measure.timing.loop import backend_settings, measure
    from rexbench.models.factory import create_model
    from rexbench.registry import MODELS
    from rexbench.spec import parse

    spec = parse(args.model)
    default_res = MODELS.get(spec.name).resolution if spec.source == "zoo" else 224
    config = RunConfig.preset(
        args.config,
        batch_size=args.batch_size,
        resolution=args.resolution,
        threads=args.threads,
        runs=args.rounds * args.per_round,
        warmup=args.warmup,
    )
    t0 = time.perf_counter()
    with backend_settings(config.threads, config.cudnn_benchmark, config.allow_tf32) as backend:
        prepared = prepare(create_model(spec), config, default_resolution=default_res)
        ops = device_ops(prepared.device)
        arms = [
            agree.rexbench_arm(prepared.run, ops),
            agree.timer_arm(prepared.run, backend["threads"]),
        ]
        warm = measure(prepared.run, runs=1, warmup=args.warmup, ops=ops)  # warms both: one module
        samples = agree.interleave(arms, args.rounds, args.per_round)
    wall = time.perf_counter() - t0

    (result,) = agree.agreements(arms, samples)
    rex = stats.summarize(samples[result.reference], config.batch_size)
    timer = stats.summarize(samples[result.arm], config.batch_size)
    ms = 1e6
    print(
        f"model {spec}  config {config.label}  batch {config.batch_size}  res {prepared.resolution}"
    )
    print(f"threads {backend['threads']}  torch {torch.__version__}  warm-up {warm.warmup_s:.2f} s")
    if prepared.compile_s is not None:
        print(f"compile (first call) {prepared.compile_s:.1f} s")
    for name, s in (("rexbench", rex), ("Timer   ", timer)):
        print(
            f"{name}  median {s.median / ms:8.3f} ms  95% CI [{s.ci_low / ms:.3f}, "
            f"{s.ci_high / ms:.3f}]  IQR/median {s.noise:.1%}  n={s.n}"
        )
    print(f"p90: rexbench {rex.p90 / ms:.3f} ms, Timer {timer.p90 / ms:.3f} ms")
    verdict = "agree" if result.agrees else "DIFFER"
    ratio = result.ratio
    print(f"ratio rexbench/Timer {ratio:.4f}  ({ratio - 1:+.2%}, {verdict} within 3%)")
    print(f"wall time {wall:.1f} s")
    return 0 if result.agrees else 1


if __name__ == "__main__":
    raise SystemExit(main())
