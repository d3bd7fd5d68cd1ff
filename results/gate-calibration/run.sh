#!/usr/bin/env bash
# Real-CLI gate runs: baseline of py:envnet (rexnet_x1.0), then 3 A/A gates and 3 gates with rexnet_x1.3 behind the same spec.
set -u
cd /tmp/calib/cli
SPEC="py:/tmp/calib/cli/envnet.py:build"
RB="/tmp/venv/bin/python -m rexbench"
if [ ! -d baselines ]; then
  CALIB_MODEL=rexnet_x1.0 $RB baseline save "$SPEC" --config eager --threads 2 --runs 300 --warmup 20 --dir baselines > save.log 2>&1
fi
for i in 1 2 3; do
  CALIB_MODEL=rexnet_x1.0 $RB gate "$SPEC" --baseline baselines --json --summary summary.md > aa-$i.json 2> aa-$i.err; echo "aa-$i exit $?"
  CALIB_MODEL=rexnet_x1.3 $RB gate "$SPEC" --baseline baselines --json --summary summary.md > slow-$i.json 2> slow-$i.err; echo "slow-$i exit $?"
done
