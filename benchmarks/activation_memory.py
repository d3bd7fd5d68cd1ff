"""How much memory one eager forward needs beyond the weights, in multiples of its input batch: the
factor `rexbench.measure.machine.memory.ACTIVATIONS_PER_INPUT` uses to refuse a batch that cannot fit.

Per model and batch size, in a fresh process each (so that no earlier run's heap is reused): build
the model, run one image (weights and one-off buffers in place), then read the peak resident set
(VmHWM of /proc/self/status, Linux) before and after one channels-last fp32 forward of the batch
under inference mode, one thread. Prints one line per run: the input's MB, the growth of the peak
and their ratio.

    python benchmarks/activation_memory.py rexnet_x1.0 efficientnet_b0 mobilenet_v2 rexnet_x2.0 --batch 8 32 64

Seen on the project's 2-core machine (torch 2.13 CPU), batch 8 / 64: ReXNet-1.0 16.7x / 17.0x,
EfficientNet-B0 17.1x / 16.9x, MobileNetV2 20.3x / 16.9x; ReXNet-2.0 34.7x at batch 32.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

ONE = """
import sys, torch
from rexbench.models.factory import build
from rexbench.spec import parse

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024

name, batch = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
model = build(parse(name)).eval().to(memory_format=torch.channels_last)
x = torch.randn(batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
with torch.inference_mode():
    model(x[:1])
    before = peak()
    model(x)
grown, size = peak() - before, x.numel() * 4
print(f"{name} batch {batch}: input {size / 1e6:.1f} MB, peak +{grown / 1e6:.1f} MB, {grown / size:.1f}x")
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--batch", type=int, nargs="+", default=[32])
    args = parser.parse_args(argv)
    for model in args.models:
        for batch in args.batch:
            subprocess.run([sys.executable, "-c", ONE, model, str(batch)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
