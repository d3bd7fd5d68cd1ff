"""How far does a whole network in fp16 or bf16 drift from fp32? The numbers behind the output
check's half-precision tolerances (rexbench/measure/checks/parity.py, docs/runtimes.md).

Every built-in model (or those named) gets the check's seeded non-trivial weights, runs a seeded
batch in fp32, fp16 and bf16 on the CPU (PyTorch's own kernels, eager), and prints the relative L2
error of each half format's logits against fp32 (the check's rel_l2), their ratio, and the ratio of
the formats' unit roundoffs (torch.finfo eps) it is compared with.

    python benchmarks/half_precision_parity.py --batch-size 4 --threads 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model names (default: every built-in model)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import copy

    import torch

    from rexbench.measure.checks.parity import TOLERANCES, nontrivial_weights
    from rexbench.models.factory import create_model
    from rexbench.registry import MODELS
    from rexbench.spec import parse

    torch.set_num_threads(args.threads)
    names = args.models or MODELS.names()
    unit = torch.finfo(torch.bfloat16).eps / torch.finfo(torch.float16).eps
    print(f"unit roundoff ratio bf16 / fp16: {unit:g}; tolerances {TOLERANCES}")
    print("| model | resolution | fp16 rel L2 | bf16 rel L2 | bf16 / fp16 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in names:
        torch.manual_seed(0)  # the initial weights, before the check's own seeded ones
        model = create_model(parse(name)).eval()
        nontrivial_weights(model)
        res = MODELS.get(name).resolution
        x = torch.randn(args.batch_size, 3, res, res, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            ref = model(x)
            errors = []
            for dtype in (torch.float16, torch.bfloat16):
                out = copy.deepcopy(model).to(dtype)(x.to(dtype)).float()
                errors.append(float((out - ref).norm() / ref.norm()))
        fp16, bf16 = errors
        print(f"| {name} | {res} | {fp16:.2e} | {bf16:.2e} | {bf16 / fp16:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
