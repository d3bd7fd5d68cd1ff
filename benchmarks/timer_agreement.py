"""Does rexbench's median agree with torch.utils.benchmark.Timer on the same model?

Both time the same prepared model in the same process, interleaved in small rounds (rexbench's
chunk, then Timer's, order swapped every round) so machine drift hits both alike. Timer is given
one call per `timeit` so that both medians are medians of single-call times; its own Measurement
(merged over all calls) supplies its median. Prints both, their ratio and whether they agree
within 3%.

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
    from torch.utils.benchmark import Measurement, Timer

    from rexbench import stats
    from rexbench.measure.backends.prepare import prepare
    from rexbench.measure.config import RunConfig
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
        timer = Timer(
            stmt="run()",
            globals={"run": prepared.run},
            num_threads=backend["threads"],
            label=str(spec),
            sub_label=config.label,
        )
        rex_samples: list[int] = []
        timer_runs: list[Measurement] = []
        warm = measure(prepared.run, runs=1, warmup=args.warmup)  # warms both: same module
        for r in range(args.rounds):
            for tool in ("rexbench", "timer") if r % 2 == 0 else ("timer", "rexbench"):
                if tool == "rexbench":
                    rex_samples += measure(prepared.run, runs=args.per_round, warmup=0).samples_ns
                else:
                    with torch.inference_mode():
                        timer_runs += [timer.timeit(1) for _ in range(args.per_round)]
    wall = time.perf_counter() - t0

    rex = stats.summarize(rex_samples, config.batch_size)
    merged = Measurement.merge(timer_runs)[0]
    timer_median_ns = merged.median * 1e9
    ratio = rex.median / timer_median_ns
    ms = 1e6
    print(
        f"model {spec}  config {config.label}  batch {config.batch_size}  res {prepared.resolution}"
    )
    print(f"threads {backend['threads']}  torch {torch.__version__}  warm-up {warm.warmup_s:.2f} s")
    if prepared.compile_s is not None:
        print(f"compile (first call) {prepared.compile_s:.1f} s")
    print(
        f"rexbench  median {rex.median / ms:8.3f} ms  95% CI [{rex.ci_low / ms:.3f}, {rex.ci_high / ms:.3f}]"
        f"  IQR/median {rex.noise:.1%}  n={rex.n}"
    )
    timer_own = stats.summarize([t * 1e9 for t in merged.times], config.batch_size)
    print(
        f"Timer     median {timer_median_ns / ms:8.3f} ms  95% CI [{timer_own.ci_low / ms:.3f}, "
        f"{timer_own.ci_high / ms:.3f}]  IQR/median {merged.iqr / merged.median:.1%}  n={len(merged.times)}"
    )
    print(f"p90: rexbench {rex.p90 / ms:.3f} ms, Timer {timer_own.p90 / ms:.3f} ms")
    verdict = "agree" if abs(ratio - 1) <= 0.03 else "DIFFER"
    print(f"ratio rexbench/Timer {ratio:.4f}  ({ratio - 1:+.2%}, {verdict} within 3%)")
    print(f"wall time {wall:.1f} s")
    return 0 if verdict == "agree" else 1


if __name__ == "__main__":
    raise SystemExit(main())
