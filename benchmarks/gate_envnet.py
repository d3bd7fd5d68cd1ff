"""Gate calibration model (benchmarks/gate_cli_runs.sh): one `py:` spec that builds a different width
when the CALIB_MODEL environment variable says so, so a baseline and a gate can see a genuine slowdown."""

import os

from rexbench import create_model


def build():
    return create_model(os.environ.get("CALIB_MODEL", "rexnet_x1.0"))


build.default_input_shape = (3, 224, 224)
