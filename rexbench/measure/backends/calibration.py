"""What int8 quantization is calibrated on: the calibration half of the fidelity set
(rexbench.models.photos, 216 crops of the photographs scikit-image ships), at the model's input
resolution, normalised as the model's weights expect. The evaluation half, which measures a
configuration's fidelity (rexbench.measure.checks.fidelity), is never seen by the calibration.

A backend that quantizes says so (`Backend.calibrates`) and is handed a `Calibration`; it feeds
the inputs to its quantizer `batch` at a time (`chunks`: an engine built for a fixed batch size
takes no other) and puts `Calibration.describe(...)` into its record. numpy and torch are imported
inside the functions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.models.packaged import IMAGENET_MEAN, IMAGENET_STD, normalization

if TYPE_CHECKING:
    import numpy as np

HALF = "calibration"
SOURCE = "rexbench.models.photos (photographs shipped with scikit-image)"
Triple = tuple[float, float, float]


@dataclass(frozen=True)
class Calibration:
    """The calibration inputs' normalisation (mean and std of 0-1 RGB pixels): ImageNet's unless
    the weights were trained with another (rexbench.models.packaged.normalization)."""

    mean: Triple = IMAGENET_MEAN
    std: Triple = IMAGENET_STD

    @classmethod
    def for_weights(cls, weights: str | Path | None) -> Calibration:
        """The calibration a model built with `--weights` needs."""
        mean, std = normalization(weights)
        return cls(mean, std)

    def inputs(self, shape: Sequence[int]) -> np.ndarray:
        """The calibration half as an N x 3 x R x R float32 array for an input of `shape`
        ([batch,] 3, R, R); one line when the model takes no square RGB image."""
        from rexbench.models.photos import fidelity_inputs

        return fidelity_inputs(image_resolution(shape), HALF, self.mean, self.std)

    def describe(self, method: str, inputs: int, **more: Any) -> dict[str, Any]:
        """What a record keeps of a calibration: how many inputs, from where, by which method."""
        return {
            "inputs": inputs,
            "half": HALF,
            "source": SOURCE,
            "mean": list(self.mean),
            "std": list(self.std),
            "method": method,
            **more,
        }


def image_resolution(shape: Sequence[int]) -> int:
    """R of an input shape ([batch,] 3, R, R); a RexbenchError for any other shape (the fidelity
    set holds square RGB images only)."""
    channels, height, width = (int(n) for n in tuple(shape)[-3:])
    if channels != 3 or height != width:
        raise RexbenchError(
            f"int8 calibration and fidelity use square RGB photographs: the input "
            f"{channels}x{height}x{width} is not 3xRxR; use --resolution instead of --input-shape"
        )
    return height


def chunks(inputs: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    """`inputs` `batch` rows at a time, every chunk exactly `batch` rows: the last one filled up
    with the first rows again (a model exported for a fixed batch size takes no other)."""
    import numpy as np

    for start in range(0, len(inputs), batch):
        chunk = inputs[start : start + batch]
        if len(chunk) < batch:
            chunk = np.concatenate(
                [chunk, np.resize(inputs, (batch - len(chunk), *inputs.shape[1:]))]
            )
        yield np.ascontiguousarray(chunk)
