"""Real inputs without a download: the colour photographs scikit-image ships in `skimage.data`,
expanded by deterministic crops, scales and mirroring into a fidelity set, split in two halves.

PHOTOS: every colour photograph of an everyday scene that the scikit-image wheel itself holds
(no fetch): astronaut, chelsea (a tabby cat), coffee (a cup of espresso), rocket, and the two
views of stereo_motorcycle. Left out: horse (a binary silhouette), hubble_deep_field (deep
space), retina and immunohistochemistry (medical and microscope images), colorwheel and logo
(drawings), the grey images, and those scikit-image downloads on first use (eagle, lily, skin).

Views: a square crop of side `scale` x the photo's shorter side, for each of SCALES, at each of
GRID x GRID positions spread evenly from the top-left to the bottom-right corner, resized to the
model's resolution (bilinear, antialiased, like PIL's resize) and taken as is and mirrored left
to right: 6 photos x 4 scales x 9 positions x 2 = 432 inputs, in a fixed order.

Halves: a crop (photo, scale, position) goes to the calibration half when its scale index + row +
column is even, else to the evaluation half; both mirror images of a crop go to the same half. So
the halves are disjoint by source transform (no crop of one half is in the other, not even
mirrored), though neighbouring crops share pixels; each half holds 36 views of every photo, 216
inputs. The calibration half is for calibrating int8 quantization, the evaluation half for
measuring a configuration's fidelity (rexbench.measure.checks.fidelity).

skimage and torch are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rexbench.models.packaged import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    import numpy as np
    import torch

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right")
SCALES = (0.875, 0.75, 0.625, 0.5)  # 0.875: the usual ImageNet evaluation crop (224 of 256)
GRID = 3
HALVES = ("calibration", "evaluation")
CROP_FRACTION = 0.875  # resize the shorter side to resolution / 0.875, centre-crop the resolution

Triple = Sequence[float]


@dataclass(frozen=True)
class View:
    """One input of the fidelity set: a crop of `photo` at SCALES[scale], grid cell (row, col),
    mirrored or not."""

    photo: str
    scale: int
    row: int
    col: int
    mirror: bool

    @property
    def half(self) -> str:
        return HALVES[(self.scale + self.row + self.col) % 2]


def views(half: str | None = None) -> list[View]:
    """Every view of the fidelity set in its fixed order, or those of one half."""
    if half is not None and half not in HALVES:
        raise ValueError(f"half must be one of {', '.join(HALVES)}, got {half!r}")
    every = [
        View(photo, scale, row, col, mirror)
        for photo in PHOTOS
        for scale in range(len(SCALES))
        for row in range(GRID)
        for col in range(GRID)
        for mirror in (False, True)
    ]
    return [v for v in every if half is None or v.half == half]


def photo(name: str) -> np.ndarray:
    """One of PHOTOS as an H x W x 3 uint8 RGB array, from the scikit-image installation."""
    import skimage.data

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; known: {', '.join(PHOTOS)}")
    if name.startswith("motorcycle_"):
        left, right, _disparity = skimage.data.stereo_motorcycle()
        return left if name == "motorcycle_left" else right
    return getattr(skimage.data, name)()


def fidelity_inputs(
    resolution: int, half: str, mean: Triple = IMAGENET_MEAN, std: Triple = IMAGENET_STD
) -> np.ndarray:
    """The views of one half as an N x 3 x resolution x resolution float32 array, normalised
    with `mean` and `std` (of 0-1 pixels; rexbench.models.packaged.normalization gives the
    weights' own)."""
    import torch

    chosen = views(half)
    images = {name: _tensor(photo(name)) for name in PHOTOS}
    batch = torch.cat([_view(images[v.photo], v, resolution) for v in chosen])
    return _normalise(batch, mean, std).numpy()


def preprocess(
    image: np.ndarray, resolution: int, mean: Triple = IMAGENET_MEAN, std: Triple = IMAGENET_STD
) -> np.ndarray:
    """The usual ImageNet evaluation transform of an H x W x 3 uint8 image: shorter side resized
    to round(resolution / 0.875) (256 for 224), bilinear and antialiased, centre crop of
    `resolution`, normalised; a 1 x 3 x resolution x resolution float32 array."""
    x = _tensor(image)
    height, width = x.shape[-2:]
    factor = round(resolution / CROP_FRACTION) / min(height, width)
    x = _resize(x, (round(height * factor), round(width * factor)))
    top = (x.shape[-2] - resolution) // 2
    left = (x.shape[-1] - resolution) // 2
    x = x[..., top : top + resolution, left : left + resolution]
    return _normalise(x, mean, std).numpy()


def _tensor(image: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 1 x 3 x H x W float32 in [0, 1]."""
    import torch

    return torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def _view(image: torch.Tensor, view: View, resolution: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    side = round(SCALES[view.scale] * min(height, width))
    top = round(view.row * (height - side) / (GRID - 1))
    left = round(view.col * (width - side) / (GRID - 1))
    crop = _resize(image[..., top : top + side, left : left + side], (resolution, resolution))
    return crop.flip(-1) if view.mirror else crop


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    import torch.nn.functional as F

    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def _normalise(x: torch.Tensor, mean: Triple, std: Triple) -> torch.Tensor:
    import torch

    shift = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    scale = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - shift) / scale).contiguous()
