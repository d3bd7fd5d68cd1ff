#!/usr/bin/env bash
# The latency gate end to end with the real commands: `rexbench baseline save` of a `py:` spec that builds
# rexnet_x1.0, then `rexbench gate` three times unchanged (A/A) and three times with rexnet_x1.3 behind
# the same spec (a genuine slowdown). Prints each run's exit code; verdicts land in WORKDIR.
# Usage: bash benchmarks/gate_cli_runs.sh [WORKDIR]   (default: a new temporary folder)
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="${1:-$(mktemp -d)}"
mkdir -p "$WORK" && cd "$WORK" || exit 2
SPEC="py:$HERE/gate_envnet.py:build"
if [ ! -d baselines ]; then
  CALIB_MODEL=rexnet_x1.0 rexbench baseline save "$SPEC" --config eager --threads 2 --runs 300 --warmup 20 --dir baselines > save.log 2>&1
fi
for i in 1 2 3; do
  CALIB_MODEL=rexnet_x1.0 rexbench gate "$SPEC" --baseline baselines --json --summary summary.md > "aa-$i.json" 2> "aa-$i.err"; echo "aa-$i exit $?"
  CALIB_MODEL=rexnet_x1.3 rexbench gate "$SPEC" --baseline baselines --json --summary summary.md > "slow-$i.json" 2> "slow-$i.err"; echo "slow-$i exit $?"
done
echo "verdicts in $WORK"
