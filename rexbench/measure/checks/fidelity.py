"""Fidelity: how far a configuration's outputs are from the eager fp32 model's on real images.

Measured on the evaluation half of the fidelity set (rexbench.models.photos), as three numbers:

- top1_agreement: the fraction of inputs whose arg-max class equals the reference's;
- top5_overlap: the mean, over inputs, of |top-5 classes & reference top-5 classes| / 5;
- rel_l2: ||logits - reference||_2 / ||reference||_2 over the whole array (as the output parity
  check computes it, rexbench.measure.checks.parity).

Plain functions on N x C numpy arrays of logits, so every runtime's output is judged the same way.
Top-k classes are the k largest logits, ties broken by the lower class index. With random weights
(no checkpoint; rexbench.models.packaged.has_trained_weights) the classes mean nothing and
near-ties are common: top-1 agreement then says little, and the parity check judges instead.

For a prepared configuration: `reference` takes the eager fp32 logits of the evaluation half
before the model is prepared, `measure` the configuration's own (its `PreparedModel.logits`, fed
its batch size at a time, under inference mode as it is timed) and the record's entry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import numpy as np
    from torch import nn

    from rexbench.measure.backends.base import PreparedModel

BATCH = 24  # inputs per forward of `torch_logits`
HALF = "evaluation"


@dataclass(frozen=True)
class Fidelity:
    """The three numbers of a configuration against the reference, and how many inputs they cover."""

    top1_agreement: float
    top5_overlap: float
    rel_l2: float
    inputs: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def top_classes(logits: np.ndarray, k: int) -> np.ndarray:
    """The k highest-scoring classes of every row, best first (ties: lower index first)."""
    import numpy as np

    return np.argsort(-np.asarray(logits), axis=1, kind="stable")[:, :k]


def top1_agreement(logits: np.ndarray, reference: np.ndarray) -> float:
    """Fraction of rows whose arg-max class is the reference's."""
    import numpy as np

    _check_shapes(logits, reference)
    return float(np.mean(top_classes(logits, 1)[:, 0] == top_classes(reference, 1)[:, 0]))


def top5_overlap(logits: np.ndarray, reference: np.ndarray) -> float:
    """Mean over rows of the number of shared top-5 classes, divided by 5."""
    _check_shapes(logits, reference)
    mine, theirs = top_classes(logits, 5), top_classes(reference, 5)
    shared = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(mine, theirs, strict=True)]
    return sum(shared) / (5 * len(shared))


def relative_l2(logits: np.ndarray, reference: np.ndarray) -> float:
    """||logits - reference||_2 / ||reference||_2, both taken over the whole array (float64)."""
    import numpy as np

    _check_shapes(logits, reference)
    ref = np.asarray(reference, dtype=np.float64)
    diff = np.asarray(logits, dtype=np.float64) - ref
    return float(np.linalg.norm(diff) / np.linalg.norm(ref))


def fidelity(logits: np.ndarray, reference: np.ndarray) -> Fidelity:
    """All three numbers of `logits` against the eager fp32 `reference` (both N x C)."""
    return Fidelity(
        top1_agreement=top1_agreement(logits, reference),
        top5_overlap=top5_overlap(logits, reference),
        rel_l2=relative_l2(logits, reference),
        inputs=len(reference),
    )


def torch_logits(model: nn.Module, inputs: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """An eval-mode PyTorch model's fp32 logits for N x 3 x H x W inputs, `batch` at a time."""
    import numpy as np
    import torch

    outputs = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch):
            chunk = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch]))
            outputs.append(model(chunk).float().numpy())
    return np.concatenate(outputs)


@dataclass(frozen=True)
class Reference:
    """The evaluation half at one input shape, and the eager fp32 model's logits of it."""

    inputs: np.ndarray
    logits: np.ndarray


def reference(model: nn.Module, shape: Sequence[int], weights: str | Path | None) -> Reference:
    """The evaluation half at `shape` (3 x R x R), normalised as `weights` expect, and the eager
    fp32 `model`'s logits of it (call it before the model is prepared)."""
    from rexbench.measure.backends.calibration import image_resolution
    from rexbench.models.packaged import normalization
    from rexbench.models.photos import fidelity_inputs

    mean, std = normalization(weights)
    inputs = fidelity_inputs(image_resolution(shape), HALF, mean, std)
    return Reference(inputs, torch_logits(model, inputs))


def prepared_logits(prepared: PreparedModel, inputs: np.ndarray) -> np.ndarray:
    """A prepared configuration's logits of every row of `inputs`, fed its batch size at a time
    (the rows that fill up the last chunk dropped), under inference mode as it is timed."""
    import numpy as np
    import torch

    from rexbench.measure.backends.calibration import chunks

    with torch.inference_mode():
        out = [prepared.logits(chunk) for chunk in chunks(inputs, prepared.config.batch_size)]
    return np.concatenate([o.reshape(len(o), -1) for o in out])[: len(inputs)]


def measure(prepared: PreparedModel, ref: Reference, trained: bool) -> dict[str, Any]:
    """The record's `fidelity` of a prepared configuration: the three numbers against `ref`, on
    which half, against what, and whether the weights were trained (top-1 agreement means little
    with random ones)."""
    data = fidelity(prepared_logits(prepared, ref.inputs), ref.logits).to_dict()
    data.update(half=HALF, reference="eager fp32 on the CPU", trained_weights=trained)
    return data


def _check_shapes(logits: np.ndarray, reference: np.ndarray) -> None:
    if logits.ndim != 2 or logits.shape != reference.shape or logits.shape[1] < 5:
        raise ValueError(
            f"logits and reference must be N x C arrays of one shape with C >= 5, got "
            f"{logits.shape} and {reference.shape}"
        )
