"""Calibration helper: the same py: spec builds a different width when CALIB_MODEL says so."""

import os

from rexbench import create_model


def build():
    return create_model(os.environ.get("CALIB_MODEL", "rexnet_x1.0"))


build.default_input_shape = (3, 224, 224)
