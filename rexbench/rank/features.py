"""Rank of a model's penultimate features (paper section 6, Figure 5 right; Table 2's nuclear norm).

The features are the input of the classifier, captured with a forward pre-hook, for a batch of images:
seeded synthetic images by default, or the images of a folder. Their singular values (no centering: the
raw feature matrix, images x channels), nuclear norm (sum of singular values) and rank (tolerance as in
`rexbench.rank.study.default_rtol`) are reported; the plot shows the CDF of the singular values divided by
the largest. With random weights the numbers describe the architecture at initialisation only; the
paper's figure uses trained models on ImageNet validation images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    import torch
    from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
HEAD_ATTRS = ("output", "classifier", "head", "fc")  # ReXNet, torchvision/timm, timm, ResNet
CROP_FRACTION = 0.875  # resize to res / 0.875, centre-crop res: the usual ImageNet evaluation


@dataclass
class FeatureSpectrum:
    """Singular values of one model's penultimate features over `images` inputs."""

    model: str
    layer: str  # the classifier whose input was captured
    images: int
    dim: int
    singular_values: list[float] = field(default_factory=list)  # descending
    rank: int = 0
    rtol: float = 0.0
    weights: str | None = None  # the checkpoint; None: random initialisation (no checkpoint)

    @property
    def random_weights(self) -> bool:
        return self.weights is None

    @property
    def nuclear_norm(self) -> float:
        return float(sum(self.singular_values))

    def normalized(self) -> list[float]:
        """Singular values divided by the largest, in [0, 1] (the x axis of Figure 5, right)."""
        top = self.singular_values[0] if self.singular_values else 0.0
        return (
            [s / top for s in self.singular_values]
            if top > 0
            else [0.0] * len(self.singular_values)
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields, the nuclear norm, the singular values, whether the weights are random."""
        data = asdict(self)
        values = data.pop("singular_values")
        return data | {
            "nuclear_norm": self.nuclear_norm,
            "singular_values": values,
            "random_weights": self.random_weights,
        }


def find_classifier(model: nn.Module) -> tuple[str, nn.Module]:
    """The classifier layer: timm's `get_classifier()` if it is a Linear/Conv2d, else the last
    Linear/Conv2d under the first of `output` (ReXNet: `output.1`), `classifier`, `head`, `fc`, else
    the last Linear/Conv2d registered in the model."""
    from torch import nn

    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    if not layers:
        raise RexbenchError(
            "the model has no Linear or Conv2d layer to take the classifier input from"
        )
    getter = getattr(model, "get_classifier", None)
    if callable(getter):
        found = getter()
        for name, module in layers:
            if module is found:
                return name, module
    for attr in HEAD_ATTRS:
        inside = [(n, m) for n, m in layers if n == attr or n.startswith(attr + ".")]
        if inside:
            return inside[-1]
    return layers[-1]


def penultimate_features(
    model: nn.Module, images: torch.Tensor, batch_size: int = 32
) -> tuple[str, torch.Tensor]:
    """(classifier name, features of shape (images, channels)): the classifier's input, in eval mode.

    A 4-D input (a 1x1-conv classifier, as in ReXNet) is averaged over its spatial positions (1x1
    after global pooling, so this only flattens).
    """
    import torch

    name, classifier = find_classifier(model)
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        feats = args[0].detach()
        if feats.ndim == 4:
            feats = feats.mean(dim=(2, 3))
        captured.append(feats.flatten(1).float().cpu())

    handle = classifier.register_forward_pre_hook(hook)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                model(images[start : start + batch_size])
    finally:
        handle.remove()
        model.train(was_training)
    return name, torch.cat(captured)


def _normalize(images: torch.Tensor) -> torch.Tensor:
    import torch

    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def synthetic_images(count: int, resolution: int, seed: int = 0) -> torch.Tensor:
    """Seeded smooth random images, ImageNet-normalised: uniform noise on a res/16 grid, bilinearly
    upsampled (so neighbouring pixels correlate like in photos), plus 5% pixel noise, in [0, 1]."""
    import torch
    import torch.nn.functional as F

    if count < 1 or resolution < 8:
        raise RexbenchError(
            f"need at least 1 image of at least 8 px, got {count} of {resolution} px"
        )
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, max(2, resolution // 16), max(2, resolution // 16), generator=gen)
    smooth = F.interpolate(
        coarse, size=(resolution, resolution), mode="bilinear", align_corners=False
    )
    noise = 0.05 * torch.randn(count, 3, resolution, resolution, generator=gen)
    return _normalize((smooth + noise).clamp(0, 1))


def image_files(folder: str | Path, limit: int) -> list[Path]:
    """Image files under `folder` (recursively), sorted by path, at most `limit`."""
    root = Path(folder)
    if not root.is_dir():
        raise RexbenchError(f"--images {root}: not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise RexbenchError(f"--images {root}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files[:limit]


def load_images(folder: str | Path, resolution: int, limit: int) -> torch.Tensor:
    """Decode with Pillow (any format it opens), RGB, resize the short side to res/0.875, centre-crop
    res x res, scale to [0, 1] and ImageNet-normalise."""
    import numpy as np
    import torch

    try:
        from PIL import Image
    except ImportError:  # matplotlib depends on Pillow, so this is unusual
        raise RexbenchError("reading --images needs Pillow: pip install pillow") from None
    short = round(resolution / CROP_FRACTION)
    tensors = []
    for path in image_files(folder, limit):
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
        except OSError as exc:
            raise RexbenchError(f"cannot read image {path}: {exc}") from None
        w, h = rgb.size
        scale = short / min(w, h)
        rgb = rgb.resize(
            (max(resolution, round(w * scale)), max(resolution, round(h * scale))), Image.BILINEAR
        )
        left, top = (rgb.width - resolution) // 2, (rgb.height - resolution) // 2
        rgb = rgb.crop((left, top, left + resolution, top + resolution))
        tensors.append(torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1))
    return _normalize(torch.stack(tensors))


def spectrum(
    model: str, layer: str, features: torch.Tensor, rtol: float | None = None
) -> FeatureSpectrum:
    """Singular values (float64 SVD of the fp32 features) and rank with `default_rtol` unless given."""
    import torch

    from rexbench.rank.study import default_rtol

    rows, cols = features.shape
    values = torch.linalg.svdvals(features.double())
    tol = default_rtol(rows, cols) if rtol is None else rtol
    rank = int((values > tol * values[0]).sum()) if values.numel() and values[0] > 0 else 0
    return FeatureSpectrum(
        model=model,
        layer=layer,
        images=rows,
        dim=cols,
        singular_values=values.tolist(),
        rank=rank,
        rtol=tol,
    )


def load_model(
    name: str, weights: str | Path | None = None, seed: int = 0
) -> tuple[str, nn.Module, int]:
    """(label, eval-mode model, default resolution) via `rexbench.create_model`; zoo models use their
    registry resolution, anything else 224. The random initialisation is seeded with `seed` (in a
    forked RNG, so the caller's global RNG is untouched): without --weights, reruns agree."""
    import torch

    import rexbench
    from rexbench.registry import MODELS
    from rexbench.spec import parse

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = rexbench.create_model(name, weights=str(weights) if weights is not None else None)
    try:
        spec = parse(name)
    except RexbenchError:
        return name, model, 224
    resolution = MODELS.get(spec.name).resolution if spec.source == "zoo" else 224
    return str(spec), model, resolution


def feature_spectra(
    models: Sequence[str],
    weights: Sequence[str | Path | None] | None = None,
    images: str | Path | None = None,
    count: int = 128,
    resolution: int | None = None,
    seed: int = 0,
    rtol: float | None = None,
) -> list[FeatureSpectrum]:
    """The spectrum of each model's penultimate features over the same inputs (per resolution);
    `seed` seeds both the synthetic images and the random initialisation."""
    weights = list(weights or [None] * len(models))
    if len(weights) != len(models):
        raise RexbenchError(
            f"give --weights once per model ({len(models)}), or not at all; got {len(weights)}"
        )
    out = []
    cache: dict[int, torch.Tensor] = {}
    for name, path in zip(models, weights, strict=True):
        label, model, own_res = load_model(name, path, seed)
        res = resolution or own_res
        if res not in cache:
            cache[res] = (
                load_images(images, res, count) if images else synthetic_images(count, res, seed)
            )
        layer, feats = penultimate_features(model, cache[res])
        out.append(spectrum(label, layer, feats, rtol))
        out[-1].weights = str(path) if path is not None else None
    return out
