"""OpenVINO's int8 (`--config openvino_int8`): the converted model quantized by NNCF's post-training
quantization, `nncf.quantize`, with its defaults for a CNN on the CPU (the "performance" preset:
symmetric int8 activations and weights, weights per output channel; MinMax-type ranges from the
calibration inputs; fast bias correction), every calibration input used (subset_size). The CPU
plugin then runs the quantized operators in int8 and the rest in the run's precision (f32). NNCF
is the `rexbench[int8]` extra; nncf is imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rexbench.measure.backends.base import Package, timed
from rexbench.measure.backends.calibration import chunks
from rexbench.measure.backends.quiet import quiet

if TYPE_CHECKING:
    import numpy as np

    from rexbench.measure.backends.calibration import Calibration

METHOD = "nncf.quantize: post-training, preset performance (symmetric int8), fast bias correction"
NNCF = Package("nncf", "NNCF", "rexbench[int8]", "--config openvino_int8")


def quantize(
    ov_model: Any, inputs: np.ndarray, batch: int, calibration: Calibration
) -> tuple[Any, dict[str, Any]]:
    """The OpenVINO model quantized to int8 on `inputs` (N x 3 x R x R fp32, fed `batch` at a time),
    and what the record keeps of it."""
    import logging

    import nncf

    nncf.set_log_level(logging.ERROR)
    batches = list(chunks(inputs, batch))
    dataset = nncf.Dataset(batches)
    with quiet():
        quantized, seconds = timed(
            lambda: nncf.quantize(ov_model, dataset, subset_size=len(batches))
        )
    info = calibration.describe(METHOD, len(inputs), batch=batch, quantize_s=seconds)
    return quantized, {"calibration": info, "nncf": _version()}


def _version() -> str:
    from importlib.metadata import version

    return version("nncf")
