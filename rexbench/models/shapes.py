"""Input shapes (C, H, W): the `--input-shape` option and each model's own default, for every command.

Defaults, by source:
  zoo          (3, R, R) with R the registry resolution (the paper's comparison resolution, Tables 5/A2)
  timm         the model's pretrained_cfg input_size (the TAG's, if given), with `in_chans` / `img_size`
               from the spec's kwargs applied (timm does not update the config for them)
  torchvision  ViT-style models: their `image_size`; other classification models: the crop size of their
               DEFAULT weights' preset transform (metadata only, nothing downloaded), else 224;
               detection / segmentation / video models: cannot be guessed
  py           a `default_input_shape` attribute, (C, H, W) or "3x224x224", on the model (checked first)
               or on the factory; else a timm-style pretrained_cfg / default_cfg input_size on the model
Anything else cannot be guessed: the error says to pass --input-shape 3xHxW or --resolution N.

Sizes: at most MAX_SIZE a side for every model; at least MIN_SIZE for the built-in ones (they
downsample 32x). `resolve_input_shape` is the one path every command that counts or measures takes;
`check_options` is the one check of an input shape given with a resolution (options and RunConfig).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.spec import ModelSpec

if TYPE_CHECKING:
    from torch import nn

Shape = tuple[int, int, int]

_SIZE_RE = re.compile(r"[0-9]+")
_SEPARATORS = re.compile(r"\s*[xX×,]\s*")
# Every built-in model downsamples 32x: below 32 px its last feature map would be empty.
MIN_SIZE = 32
# Above this a typo (22400 for 224) would allocate tens of GB before anything is counted.
MAX_SIZE = 4096
_USAGE = "expected CxHxW (e.g. 3x224x224), HxW (3 channels) or one size (224 means 3x224x224)"


def parse_input_shape(text: str) -> Shape:
    """The `--input-shape` text -> (C, H, W): "3x224x224", "1x28x28", "256x192" (C=3), "224" (3x224x224)."""
    parts = _SEPARATORS.split(text.strip())
    if not 1 <= len(parts) <= 3 or not all(_SIZE_RE.fullmatch(part) for part in parts):
        raise RexbenchError(f"--input-shape {text!r}: {_USAGE}")
    sizes = [int(part) for part in parts]
    if min(sizes) <= 0:
        raise RexbenchError(f"--input-shape {text!r}: sizes must be positive integers")
    if len(sizes) == 1:
        return (3, sizes[0], sizes[0])
    if len(sizes) == 2:
        return (3, sizes[0], sizes[1])
    return (sizes[0], sizes[1], sizes[2])


def format_shape(shape: Sequence[int]) -> str:
    """(3, 224, 224) -> "3x224x224", the form `parse_input_shape` reads back."""
    return "x".join(str(size) for size in shape)


def check_shape(value: Any, what: str, text: bool = True) -> Shape:
    """A (C, H, W) given as a sequence of 3 positive ints or (if `text`) as option text; anything
    else is an error."""
    if text and isinstance(value, str):
        return parse_input_shape(value)
    try:
        sizes = tuple(value)
    except TypeError:
        sizes = ()
    if len(sizes) != 3 or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes
    ):
        raise RexbenchError(f"{what} must be (C, H, W) as 3 positive integers, got {value!r}")
    return (sizes[0], sizes[1], sizes[2])


def default_input_shape(spec: ModelSpec, model: nn.Module | None = None) -> Shape:
    """The (C, H, W) a model expects by default (see the module doc), or a RexbenchError saying what to pass.

    model: the model built from `spec`, if at hand; an external model is built when it is not given.
    """
    if spec.source == "zoo":
        from rexbench.registry import MODELS

        resolution = MODELS.get(spec.name).resolution
        return (3, resolution, resolution)
    if model is None:
        from rexbench.models.factory import build

        model = build(spec)
    guess = {"timm": _timm_shape, "torchvision": _torchvision_shape, "py": _py_shape}.get(
        spec.source
    )
    shape = guess(spec, model) if guess else None
    if shape is None:
        raise RexbenchError(cannot_guess_message(spec))
    return shape


def resolve_input_shape(
    spec: ModelSpec,
    model: nn.Module | None = None,
    input_shape: str | Sequence[int] | None = None,
    resolution: int | None = None,
) -> Shape:
    """The input (C, H, W) a command uses: `--input-shape`, else `--resolution` R as (C, R, R) with the
    model's own channel count (3 when it cannot be guessed), else the model's default.

    Both options together must agree (H = W = R). Sizes are checked (`check_size`).
    model: the model built from `spec`; an external model is built when it is needed and not given.
    """
    explicit = check_options(spec, input_shape, resolution)
    if explicit is not None:
        return explicit
    if resolution is not None:
        try:
            channels = default_input_shape(spec, model)[0]
        except RexbenchError:
            channels = 3
        return check_size(spec, (channels, resolution, resolution))
    return check_size(spec, default_input_shape(spec, model))


def check_options(
    spec: ModelSpec | None,
    input_shape: str | Sequence[int] | None,
    resolution: int | None,
    *,
    exclusive: bool = False,
) -> Shape | None:
    """The one check of an input shape and a resolution given together, without building anything:
    the (C, H, W) `input_shape` gives, else None (the model's default or channel count is still needed).

    Options (`--input-shape`, `--resolution`): both may be given when they agree (H = W = R).
    exclusive: a run configuration's fields (`input_shape` a (C, H, W) sequence), which keep one of
    the two. spec: also check the sizes for that model (`check_size`); None checks the form only.
    """
    if input_shape is not None:
        what = "input_shape" if exclusive else "--input-shape"
        shape = check_shape(input_shape, what, text=not exclusive)
        if exclusive and resolution is not None:
            raise RexbenchError("give either a resolution or an input shape, not both")
        if resolution is not None and shape[1:] != (resolution, resolution):
            raise RexbenchError(
                f"--input-shape {format_shape(shape)} and --resolution {resolution} disagree; pass one of them"
            )
        return shape if spec is None else check_size(spec, shape)
    if resolution is not None:
        if not _positive_int(resolution):
            hint = f"; {_size_rule(spec)}" if spec is not None and spec.source == "zoo" else ""
            raise RexbenchError(
                f"--resolution must be a positive integer, got {resolution!r}{hint}"
            )
        if spec is not None:
            check_size(spec, (3, resolution, resolution))
    return None


def check_size(spec: ModelSpec, shape: Shape) -> Shape:
    """`shape` if its height and width are usable for `spec` (see MIN_SIZE, MAX_SIZE), else an error."""
    low = MIN_SIZE if spec.source == "zoo" else 1
    sides = shape[1:]
    if min(sides) < low or max(sides) > MAX_SIZE:
        got = sides[0] if sides[0] == sides[1] else format_shape(shape)
        raise RexbenchError(f"{_size_rule(spec)}, got {got} for {spec}")
    return shape


def _size_rule(spec: ModelSpec) -> str:
    if spec.source == "zoo":
        return f"resolution must be between {MIN_SIZE} (the models downsample 32x) and {MAX_SIZE}"
    return f"resolution must be at most {MAX_SIZE}"


def cannot_guess_message(spec: ModelSpec) -> str:
    message = (
        f"cannot tell which input shape {spec} expects; pass --input-shape 3xHxW "
        "(e.g. --input-shape 3x224x224) or --resolution N"
    )
    if spec.source == "py":
        message += (
            ", or give the model or its factory an attribute default_input_shape = (3, 224, 224)"
        )
    return message


def _config_shape(model: Any) -> Shape | None:
    """timm's `pretrained_cfg` (older: `default_cfg`) input_size, if the model carries one."""
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(model, attr, None)
        if isinstance(cfg, dict) and cfg.get("input_size"):
            return check_shape(cfg["input_size"], f"{type(model).__name__}.{attr}['input_size']")
    return None


def _timm_shape(spec: ModelSpec, model: Any) -> Shape | None:
    shape = _config_shape(model)
    if shape is None:
        return None
    channels, height, width = shape
    kwargs = spec.kwargs_dict
    if _positive_int(kwargs.get("in_chans")):
        channels = kwargs["in_chans"]
    if _positive_int(kwargs.get("img_size")):
        height = width = kwargs["img_size"]
    return (channels, height, width)


def _torchvision_shape(spec: ModelSpec, model: Any) -> Shape | None:
    size = getattr(model, "image_size", None)  # VisionTransformer's fixed input size
    if _positive_int(size):
        return (3, size, size)
    from rexbench.models.external import import_library

    models = import_library("torchvision").models
    if spec.name not in models.list_models(module=models):
        return None  # detection, segmentation, video, optical flow, quantized
    crop = None
    with contextlib.suppress(AttributeError, ValueError, KeyError):  # no weights: keep 224
        crop = models.get_model_weights(spec.name).DEFAULT.transforms.keywords.get("crop_size")
    if isinstance(crop, (list, tuple)) and len(crop) == 1:
        crop = crop[0]
    return (3, crop, crop) if _positive_int(crop) else (3, 224, 224)


def _py_shape(spec: ModelSpec, model: Any) -> Shape | None:
    """The model's own `default_input_shape`, else its factory's, else a timm-style config."""
    from rexbench.models.external import declared_input_shape

    value = getattr(model, "default_input_shape", None)
    if value is None:
        value = declared_input_shape(spec)
    if value is not None:
        return check_shape(value, f"{spec}: default_input_shape")
    return _config_shape(model)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
