"""A diagnostic arm for benchmarks/cli_overhead.py (--arm STEP): the minimal loop of plain_loop.py,
run after one step of what `rexbench profile` does in its process, to find which step slows a
model timed later in the same process.

Steps (each also does the imports): imports (rexbench's CLI, profile, counting and parity modules,
fvcore, thop); count (count_model with every counter); fingerprint (rexbench.measure.machine.env.fingerprint);
parity (prepare's deep copy, the eager reference output and the parity check);
trim (three forwards, then gc.collect and malloc_trim, as the memory window before a warm-up does);
dynamo (torch._dynamo.reset(), which imports dynamo; torch.manual_seed and counting import it too);
anchor (the drift anchor built and called 200 times); profile (a whole `profile_models` run of
plain_net, 20 runs, after the loop's model was built); profile_late (the same, then the loop's model
built after it). Results: results/cli-overhead/steps/.

Prints one JSON line, plain_loop.timed's: samples (ns) with their wall-clock ends, median, faults, threads.
Usage: python benchmarks/steps_loop.py STEP --weights STATE_DICT --threads 2 --runs 400 --warmup 20
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_loop import built, seeded_input, timed  # noqa: E402

STEPS = (
    "imports",
    "count",
    "fingerprint",
    "parity",
    "profile",
    "profile_late",
    "trim",
    "dynamo",
    "anchor",
)


def run_step(
    step: str, model: torch.nn.Module, args: argparse.Namespace
) -> tuple[torch.nn.Module, object]:
    """Do `step` in this process; return the model the loop times and what the step keeps alive."""
    import fvcore.nn  # noqa: F401
    import thop  # noqa: F401

    import rexbench.cli.profile  # noqa: F401
    from rexbench.measure.config import RunConfig
    from rexbench.measure.counting.counts import count_model
    from rexbench.measure.machine import env
    from rexbench.measure.run.profile import profile_models

    if step == "parity":  # prepare's deep copy, the eager reference and the check, kept alive
        from rexbench.measure.backends.prepare import prepare
        from rexbench.measure.checks import parity

        config = RunConfig.preset("eager", threads=args.threads)
        kept = prepare(model, config)
        parity.check(kept, parity.reference_output(model, config, (3, 224, 224)), "loaded")
        return model, kept
    elif step == "dynamo":
        torch._dynamo.reset()
    elif step == "anchor":
        from rexbench.measure.timing.anchor import make_anchor

        anchor = make_anchor("cpu", args.threads)
        with torch.inference_mode():
            for _ in range(200):
                anchor.fn()
    elif step == "trim":
        from rexbench.measure.timing.devices import release_free_memory

        x = torch.randn(1, 3, 224, 224)
        with torch.inference_mode():
            for _ in range(3):
                model(x)
        release_free_memory()
    elif step == "count":
        count_model(model, (1, 3, 224, 224))
    elif step == "fingerprint":
        env.fingerprint()
    elif step.startswith("profile"):
        config = RunConfig.preset("eager", threads=args.threads)
        spec = f"py:{Path(__file__).resolve().parent / 'plain_net.py'}:build"
        profile_models([spec], [config], runs=20, warmup=5, weights=args.weights)
        if step == "profile_late":
            model = built(args.weights)
    return model, None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, _kept = run_step(args.step, built(args.weights), args)
    torch.set_num_threads(args.threads)
    print(json.dumps(timed(model, seeded_input(), args.warmup, args.runs)))


if __name__ == "__main__":
    main()
