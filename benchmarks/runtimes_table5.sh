#!/usr/bin/env bash
# The runtime comparison of docs/runtimes.md on this machine, for a quiet machine (nothing else
# running: `uptime` should show a 1-minute load well under the number of cores before it starts).
#
#   bash benchmarks/runtimes_table5.sh            # RUNS=300 THREADS=2 OUT=results/runtimes by default
#   RUNS=30 bash benchmarks/runtimes_table5.sh     # a short trial
#
# 1. Table 5 (ReXNet x0.9-x2.0, EfficientNet B0-B3) with eager, max, ONNX Runtime and OpenVINO; the
#    models of each paper claim are timed in the same interleaved rounds (--interleave claims).
#    eager is included so that every speed-up over eager comes from the same rounds.
# 2. Speed-ups over eager with 95% CIs, the report ("Fastest runtime per model", claims per
#    runtime) and Figure 3 for each runtime and overlaid.
# 3. rexbench's median against a plain torch.utils.benchmark.Timer loop on the same ONNX Runtime
#    session / OpenVINO compiled model in the same process (agreement within 3%).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-300}
THREADS=${THREADS:-2}
OUT=${OUT:-results/runtimes}
uptime
rexbench sweep table5 --config eager,max,ort,openvino --threads "$THREADS" --runs "$RUNS" \
    --out "$OUT" --force
MACHINE=$(python -c "from rexbench.measure.machine.env import machine_id; print(machine_id())")
python benchmarks/profile_speedups.py "$OUT/$MACHINE" | tee "$OUT/runtimes-speedups.txt"
rexbench report "$OUT/$MACHINE" --out "$OUT/report"
for config in max ort openvino; do
    rexbench plot "$OUT/$MACHINE" --config "$config" --out "$OUT/figure3-$config.png"
done
rexbench plot "$OUT/$MACHINE" --config max,ort,openvino --out "$OUT/figure3-runtimes.png"
: > "$OUT/runtimes-timer-agreement.txt"
for model in rexnet_x1.0 rexnet_x2.0; do
    for config in ort openvino; do
        python benchmarks/timer_agreement.py "$model" --config "$config" --threads "$THREADS" \
            --rounds 30 | tee -a "$OUT/runtimes-timer-agreement.txt" || true  # DIFFER: go on
    done
done
uptime
