"""Checks on a measurement: output parity against eager fp32, validity of the samples, summary and warnings."""
