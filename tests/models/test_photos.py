"""The fidelity set: scikit-image's shipped photographs, 432 deterministic views in two halves
disjoint by source crop, and the ImageNet evaluation transform checked pixel for pixel."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from rexbench.models import photos
from rexbench.models.packaged import IMAGENET_MEAN, IMAGENET_STD

pytestmark = pytest.mark.usefixtures("one_thread")


def _crop(view: photos.View) -> tuple[str, int, int, int]:
    return (view.photo, view.scale, view.row, view.col)


def test_every_photo_is_a_colour_image_shipped_with_scikit_image() -> None:
    shapes = {name: photos.photo(name).shape for name in photos.PHOTOS}
    assert shapes == {
        "astronaut": (512, 512, 3),
        "chelsea": (300, 451, 3),
        "coffee": (400, 600, 3),
        "rocket": (427, 640, 3),
        "motorcycle_left": (500, 741, 3),
        "motorcycle_right": (500, 741, 3),
    }
    assert all(photos.photo(name).dtype == np.uint8 for name in ("chelsea", "rocket"))
    assert not np.array_equal(photos.photo("motorcycle_left"), photos.photo("motorcycle_right"))


def test_halves_are_equal_and_disjoint_by_source_crop() -> None:
    every = photos.views()
    calibration, evaluation = photos.views("calibration"), photos.views("evaluation")
    assert len(every) == len(set(every)) == 432
    assert len(calibration) == len(evaluation) == 216
    assert set(calibration) | set(evaluation) == set(every)
    assert not {_crop(v) for v in calibration} & {_crop(v) for v in evaluation}
    assert Counter(v.photo for v in evaluation) == dict.fromkeys(photos.PHOTOS, 36)
    # scale + row + col odd: 4 of the 9 cells at an even scale, 5 at an odd one; x 2 mirrors x 6
    assert Counter(v.scale for v in evaluation) == {0: 48, 1: 60, 2: 48, 3: 60}
    assert photos.views("evaluation") == evaluation  # the same order every time
    with pytest.raises(ValueError, match="half must be one of calibration, evaluation"):
        photos.views("training")


def test_fidelity_inputs_are_the_views_at_the_resolution() -> None:
    inputs = photos.fidelity_inputs(64, "evaluation")
    assert inputs.shape == (216, 3, 64, 64) and inputs.dtype == np.float32
    chosen = photos.views("evaluation")
    mirrored = [i for i, v in enumerate(chosen) if v.mirror]
    # each mirrored view follows its plain twin and is that view flipped left to right
    assert all(chosen[i - 1] == photos.View(*_crop(chosen[i]), False) for i in mirrored)
    assert all(np.array_equal(inputs[i], inputs[i - 1][..., ::-1]) for i in mirrored)
    again = photos.fidelity_inputs(64, "evaluation", mean=(0, 0, 0), std=(1, 1, 1))
    assert again.min() >= 0.0 and again.max() <= 1.0 + 1e-6  # convex weights, float rounding
    mean = np.array(IMAGENET_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(IMAGENET_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(inputs, (again - mean) / std, rtol=0, atol=1e-6)
    other = photos.fidelity_inputs(64, "calibration", mean=(0, 0, 0), std=(1, 1, 1))
    assert not any(np.array_equal(a, b) for a in again[:36] for b in other[:36])


def test_preprocess_resizes_the_shorter_side_and_crops_the_centre() -> None:
    """A 256 x 320 image is already at 224 / 0.875 = 256: the resize keeps every pixel, and the
    224 x 224 centre starts at row 16, column 48."""
    rows, cols = np.meshgrid(np.arange(256), np.arange(320), indexing="ij")
    image = np.stack([rows, cols % 256, (rows + cols) % 256], axis=-1).astype(np.uint8)
    out = photos.preprocess(image, 224, mean=(0, 0, 0), std=(1, 1, 1))
    assert out.shape == (1, 3, 224, 224) and out.dtype == np.float32
    expected = image[16:240, 48:272].transpose(2, 0, 1)[None] / np.float32(255)
    np.testing.assert_array_equal(out, expected.astype(np.float32))
    normalised = photos.preprocess(image, 224)
    assert normalised[0, 0, 0, 0] == pytest.approx((16 / 255 - 0.485) / 0.229, abs=1e-6)


def test_preprocess_of_a_photo_keeps_its_aspect() -> None:
    """chelsea, 300 x 451, becomes 256 x 385 (451 * 256 / 300 = 384.9) and then 224 x 224."""
    out = photos.preprocess(photos.photo("chelsea"), 224)
    assert out.shape == (1, 3, 224, 224)
    assert photos.preprocess(photos.photo("chelsea"), 96).shape == (1, 3, 96, 96)
