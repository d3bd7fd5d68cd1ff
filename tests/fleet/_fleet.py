"""Helpers of the fleet tests: a tiny model file, short measurement options, a local run's threads."""

from __future__ import annotations

import textwrap

# Net: Conv2d(3, 8, 3) -> global average pool -> Linear(8, 10) on 3x32x32: a model that builds and
# times in milliseconds. slow: the same model after a pause (a model still running when a node is
# removed or the sweep interrupted). broken: a factory that raises.
NETS = textwrap.dedent(
    """
    import time

    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            return self.fc(self.pool(self.conv(x)).flatten(1))


    def build():
        return Net()


    def slow():
        time.sleep(2.5)
        return Net()


    def broken():
        raise ValueError("width must be positive")


    for factory in (build, slow, broken):
        factory.default_input_shape = (3, 32, 32)
    """
)
TINY = ["--runs", "5", "--warmup", "1", "--config", "eager"]


def fresh_threads() -> int:
    """torch's thread count in a fresh interpreter with this environment: a local run's default."""
    import subprocess
    import sys

    code = "import torch; print(torch.get_num_threads())"
    return int(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
