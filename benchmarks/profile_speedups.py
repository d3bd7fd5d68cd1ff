"""Speedup of every configuration over eager, with a bootstrap 95% interval.

Reads the records of one interleaved `rexbench profile` run (all configurations of a model timed
in the same rounds, so drift hits all alike) and prints, per model and configuration: median,
IQR, the 95% CI of the median, compile seconds, and median(eager) / median(config) with a
percentile-bootstrap interval (rexbench.stats.ratio_interval). The run itself:

    rexbench profile rexnet_x1.0 rexnet_x2.0 \
        --config eager,channels_last,compile,compile_cl,max --runs 200 --out bench/results
    python benchmarks/profile_speedups.py bench/results
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="folder with the run's records")
    parser.add_argument("--reference", default="eager", help="configuration label to compare with")
    args = parser.parse_args(argv)

    from rexbench.records.store import load_records
    from rexbench.stats import Samples, ratio_interval, summarize

    records = load_records(args.results)
    by_model: dict[str, list] = {}
    for record in records:
        by_model.setdefault(record.model.spec, []).append(record)
    order = ["eager", "channels_last", "compile", "compile_cl", "max", "ort", "openvino"]
    print(
        f"{'model':<12} {'config':<14} {'median ms':>9} {'IQR ms':>7} {'95% CI of median':>17} "
        f"{'compile s':>9} {'speedup':>8} {'95% CI':>13}  anchor ms"
    )
    for model, group in by_model.items():
        group.sort(key=lambda r: order.index(r.run.label) if r.run.label in order else 99)
        ref = next((r for r in group if r.run.label == args.reference), None)
        for r in group:
            s = summarize(r.timing.samples_ns)
            anchor = (
                summarize(r.timing.anchor_ns).median / 1e6 if r.timing.anchor_ns else float("nan")
            )
            if not r.valid:  # its output differs from eager fp32: no speed-up
                speed = "INVALID"
            elif ref is not None:
                # median(ref) / median(r), raw (not anchor-normalised), 95% interval
                ratio = ratio_interval(
                    Samples(r.timing.samples_ns), Samples(ref.timing.samples_ns), alpha=0.025
                )
                speed = f"{ratio.ratio:7.2f}x {ratio.low:5.2f}-{ratio.high:5.2f}x"
            else:
                speed = "-"
            compile_s = "-" if r.timing.compile_s is None else f"{r.timing.compile_s:.1f}"
            print(
                f"{model:<12} {r.run.label:<14} {s.median / 1e6:9.2f} {s.iqr / 1e6:7.2f} "
                f"{s.ci_low / 1e6:8.2f}-{s.ci_high / 1e6:<8.2f} {compile_s:>9} {speed:>22}  {anchor:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
