"""ONNX Runtime's static int8 quantization of an exported model (`--config ort_int8`), as its
documentation's CPU recipe does it: `quant_pre_process` (shape inference and graph optimisation
first), then `quantize_static` in the QDQ format (QuantizeLinear/DequantizeLinear pairs around
each quantized operator, which the CPU provider fuses into integer kernels), activations uint8
with a zero point and weights int8 symmetric (U8S8, the provider's fast path on x86), weights
per output channel (a BN-folded depthwise convolution's channels differ in range by orders of
magnitude: on the packaged EfficientNet-Lite0, per-tensor weights kept 53% of the top-1 classes
of the fidelity set's evaluation half, per-channel 85%), and MinMax ranges of the activations over
the calibration inputs (Entropy and Percentile took 3-5 times as long here and did not agree
better: 85% and 84%). The calibrator keeps each tensor's minimum and maximum per input (ReduceMin
and ReduceMax outputs, a few numbers each); its option to merge them every N inputs
(CalibMaxIntermediateOutputs) is left off: with N = 16 it kept 69% of the Lite0's top-1 classes
instead of 85%. onnxruntime is imported inside the functions.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.measure.backends.base import timed
from rexbench.measure.backends.calibration import chunks
from rexbench.measure.backends.quiet import quiet

if TYPE_CHECKING:
    import numpy as np

    from rexbench.measure.backends.calibration import Calibration

METHOD = (
    "onnxruntime.quantization.quantize_static: QDQ, activations uint8 (MinMax), "
    "weights int8 per channel"
)


def quantize(
    blob: bytes, inputs: np.ndarray, batch: int, calibration: Calibration
) -> tuple[bytes, dict[str, Any]]:
    """The serialised model `blob` quantized to int8 on `inputs` (N x 3 x R x R fp32, fed `batch`
    at a time); returns the quantized model and what the record keeps of it."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="rexbench-int8-") as folder:
        source, ready, quantized = (
            Path(folder) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx")
        )
        source.write_bytes(blob)
        with quiet():
            _, pre_s = timed(lambda: quant_pre_process(source, ready))
            reader = _reader(_input_name(blob), inputs, batch)
            _, quantize_s = timed(
                lambda: quantize_static(
                    ready,
                    quantized,
                    reader,
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                )
            )
        out = quantized.read_bytes()
    info = calibration.describe(
        METHOD, len(inputs), batch=batch, pre_process_s=pre_s, quantize_s=quantize_s
    )
    return out, {"calibration": info, "int8_onnx_bytes": len(out)}


def _input_name(blob: bytes) -> str:
    import onnx

    return onnx.load_from_string(blob).graph.input[0].name


def _reader(name: str, inputs: np.ndarray, batch: int) -> Any:
    """A CalibrationDataReader over `inputs`, `batch` at a time."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = chunks(inputs, batch)

        def get_next(self) -> dict[str, Any] | None:
            chunk = next(self.batches, None)
            return None if chunk is None else {name: chunk}

    return Reader()
