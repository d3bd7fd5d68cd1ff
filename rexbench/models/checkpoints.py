"""Load a checkpoint file into a built model, detecting its format; strict, weights-only.

Formats (key lists: tests/data/state_dict_keys/):
- official ReXNet / ReXNet-lite (clovaai keys `features.N.out.M...`, `output.M...`), which are also
  rexbench's own ReXNet keys, so they load directly;
- torchvision EfficientNet / MobileNetV2 / V3 and timm `efficientnet_lite*` / `mobilenetv1_100`:
  the baselines are built with exactly those key names, so they load directly too;
- timm `rexnet_*` (`stem.conv`, `features.i.conv_exp/conv_dw/se/conv_pwl`, `head.fc` as Linear):
  renamed onto the official layout through one table (`timm_rexnet_table`), usable both ways;
- lukemelas-style EfficientNet-Lite (`_conv_stem`, `_blocks.N._expand_conv`, `_fc`), as the weights
  packages of `rexbench.models.packaged` ship it: renamed one to one onto rexbench's timm-layout
  `efficientnet_lite*` through `lukemelas_table`.
Any of these may be wrapped (`{"state_dict": ...}`, `{"model": ...}`, EMA variants) and/or carry a
DataParallel `module.` (or torch.compile `_orig_mod.`) prefix.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from rexbench.errors import RexbenchError

WRAPPER_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")
PREFIXES = ("module.", "_orig_mod.")
SHOWN = 3  # keys listed per category in an error message

Keys = frozenset[str]

# (format name, test on the key set), first match wins; names appear in messages.
FORMATS: tuple[tuple[str, Callable[[Keys], bool]], ...] = (
    (
        "official ReXNet-lite (clovaai)",
        lambda k: "output.4.weight" in k and "features.3.out.0.weight" in k,
    ),
    (
        "official ReXNet (clovaai)",
        lambda k: "output.1.weight" in k and any(".out.5.fc.0." in x for x in k),
    ),
    (
        "rexbench ReXNet (plain)",
        lambda k: "output.1.weight" in k and "features.3.out.0.weight" in k,
    ),
    ("timm ReXNet", lambda k: "stem.conv.weight" in k and "head.fc.weight" in k),
    (
        "torchvision MobileNetV3",
        lambda k: "classifier.3.weight" in k and "features.0.0.weight" in k,
    ),
    (
        "torchvision EfficientNet",
        lambda k: "classifier.1.weight" in k and any(".block." in x for x in k),
    ),
    (
        "torchvision MobileNetV2",
        lambda k: "classifier.1.weight" in k and any(".conv.0.0." in x for x in k),
    ),
    ("timm EfficientNet", lambda k: "conv_stem.weight" in k and "conv_head.weight" in k),
    ("timm MobileNetV1", lambda k: "conv_stem.weight" in k and "classifier.weight" in k),
    ("lukemelas EfficientNet", lambda k: "_conv_stem.weight" in k and "_fc.weight" in k),
)


def load_checkpoint(model: nn.Module, path: str | Path, model_name: str) -> None:
    """Load `path` into `model` strictly (every key, every shape) or raise a one-line RexbenchError.

    Nothing is loaded unless everything fits. Only missing BatchNorm `num_batches_tracked`
    counters are tolerated and set to 0, as PyTorch's BatchNorm does for legacy checkpoints.
    """
    path = Path(path)
    state, where = unwrap(read(path), path)
    state, prefix = strip_prefix(state)
    fmt = detect_format(state)
    if prefix:
        where.append(f"prefix {prefix!r} removed")
    if fmt == "timm ReXNet" and _is_rexnet_v1(model):
        state = timm_to_official(state, model)
        where.append("renamed to the official layout")
    if fmt == "lukemelas EfficientNet" and _is_timm_net(model):
        state = _rename(state, lukemelas_table(model))
        where.append("renamed to the timm layout")
    detected = fmt + (f", {', '.join(where)}" if where else "")
    own = model.state_dict()
    problems = fit_report(own, state)
    if problems:
        counters = {
            k: torch.zeros_like(v) for k, v in own.items() if k.endswith("num_batches_tracked")
        }
        legacy = {**counters, **state}
        if fit_report(own, legacy):
            raise RexbenchError(
                f"{path}: does not fit {model_name} (detected format: {detected}): {problems}; "
                "loading is strict, nothing was loaded"
            )
        state = legacy  # only BatchNorm counters were missing (pre-0.4.1 checkpoints)
    model.load_state_dict(state, strict=True)


def read(path: Path) -> object:
    """torch.load with weights_only=True; every failure becomes a one-line RexbenchError."""
    if not path.exists():
        raise RexbenchError(f"weights file not found: {path}")
    if not path.is_file():
        raise RexbenchError(f"weights path is not a file: {path}")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        text = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            raise RexbenchError(
                f"{path}: refused: the pickle references Python code ({found[1]}), which a "
                "weights-only load never runs; save a plain state dict "
                "(torch.save(model.state_dict(), path)) instead"
            ) from None
        raise RexbenchError(
            f"{path}: not a readable PyTorch checkpoint (corrupt, truncated or another format): "
            f"{_reason(exc)}"
        ) from None


def _reason(exc: Exception) -> str:
    text = str(exc)
    specific = re.search(r"Unsupported [^\n]*", text)
    if specific:
        return specific[0].strip()
    first = (
        text.strip().splitlines()[0].split(". ")[0] if text.strip() else "empty or truncated file"
    )
    return f"{type(exc).__name__}: {first[:160]}"


def is_state_dict(obj: object) -> bool:
    """A non-empty mapping of str -> Tensor."""
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def unwrap(obj: object, path: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The state dict itself, or the one under a wrapper key (searched up to 3 levels deep)."""
    where: list[str] = []
    for _ in range(4):
        if is_state_dict(obj):
            return dict(obj), [f"inside {' / '.join(repr(w) for w in where)}"] if where else []
        if not isinstance(obj, Mapping):
            break
        inner = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        where.append(inner)
        obj = obj[inner]
    raise RexbenchError(
        f"{path}: not a state dict (found {_describe(obj)}); expected parameter names -> tensors, "
        f"possibly under one of {', '.join(repr(k) for k in WRAPPER_KEYS)}"
    )


def _describe(obj: object) -> str:
    if isinstance(obj, Mapping):
        keys = [str(k) for k in list(obj)[:SHOWN]]
        more = ", ..." if len(obj) > SHOWN else ""
        return f"a dict with keys {', '.join(keys)}{more}" if keys else "an empty dict"
    if isinstance(obj, torch.Tensor):
        return f"a single tensor of shape {_shape(obj)}"
    return f"a {type(obj).__name__}"


def strip_prefix(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Remove a DataParallel `module.` / compiled `_orig_mod.` prefix carried by every key."""
    removed = ""
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                removed += prefix
                changed = True
    return state, removed


def detect_format(state: Mapping[str, torch.Tensor]) -> str:
    """Name the layout a state dict follows, from its key names alone."""
    keys = frozenset(state)
    for name, test in FORMATS:
        if test(keys):
            return name
    return f"unknown ({len(keys)} keys, first {next(iter(state))!r})"


def fit_report(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> str:
    """'' when keys and shapes match exactly; else counts and the first few of each problem."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [
        f"{k} (file {_shape(state[k])}, model {_shape(own[k])})"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    parts = []
    for label, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("mis-shaped", misshaped),
    ):
        if items:
            more = ", ..." if len(items) > SHOWN else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:SHOWN])}{more}")
    return "; ".join(parts)


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


# --- timm ReXNet <-> official ReXNet ---------------------------------------------------------------


def _is_rexnet_v1(model: nn.Module) -> bool:
    from rexbench.models.rexnet import SE, ReXNet

    return isinstance(model, ReXNet) and any(isinstance(m, SE) for m in model.modules())


def timm_rexnet_table(model: nn.Module) -> dict[str, str]:
    """Official module path -> timm module path, for every module with tensors, read off `model`
    (any width or depth; timm/models/rexnet.py names blocks conv_exp/conv_dw/se/conv_pwl)."""
    from rexbench.models.rexnet import SE, LinearBottleneck

    table = {"features.0": "stem.conv", "features.1": "stem.bn"}
    blocks = [(i, m) for i, m in enumerate(model.features) if isinstance(m, LinearBottleneck)]
    for j, (i, block) in enumerate(blocks):
        part = "conv_exp"
        for k, layer in enumerate(block.out):
            here = f"features.{i}.out.{k}"
            if isinstance(layer, nn.Conv2d):
                if layer.groups > 1:
                    part = "conv_dw"
                elif part != "conv_exp":
                    part = "conv_pwl"
                table[here] = f"features.{j}.{part}.conv"
            elif isinstance(layer, nn.BatchNorm2d):
                table[here] = f"features.{j}.{part}.bn"
            elif isinstance(layer, SE):
                for sub, name in (("0", "fc1"), ("1", "bn"), ("3", "fc2")):
                    table[f"{here}.fc.{sub}"] = f"features.{j}.se.{name}"
    last = blocks[-1][0]
    table[f"features.{last + 1}"] = f"features.{len(blocks)}.conv"
    table[f"features.{last + 2}"] = f"features.{len(blocks)}.bn"
    table["output.1"] = "head.fc"
    return table


def _rename(state: Mapping[str, torch.Tensor], table: Mapping[str, str]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        module, _, tensor = key.rpartition(".")
        out[f"{table[module]}.{tensor}" if module in table else key] = value
    return out


def official_to_timm(
    state: Mapping[str, torch.Tensor], model: nn.Module
) -> dict[str, torch.Tensor]:
    """Official/rexbench ReXNet state dict -> timm `rexnet_*` keys; the 1x1-conv head becomes Linear."""
    out = _rename(state, timm_rexnet_table(model))
    if "head.fc.weight" in out and out["head.fc.weight"].ndim == 4:
        out["head.fc.weight"] = out["head.fc.weight"].flatten(1)
    return out


def timm_to_official(
    state: Mapping[str, torch.Tensor], model: nn.Module
) -> dict[str, torch.Tensor]:
    """timm `rexnet_*` state dict -> official keys; the Linear head weight becomes [C, P, 1, 1]."""
    inverse = {timm: official for official, timm in timm_rexnet_table(model).items()}
    out = _rename(state, inverse)
    weight = out.get("output.1.weight")
    if weight is not None and weight.ndim == 2:
        out["output.1.weight"] = weight[:, :, None, None]
    return out


# --- lukemelas EfficientNet-Lite -> rexbench (timm layout) ------------------------------------------

# lukemelas block part -> timm block part: a depthwise-separable block (the first, expand ratio 1)
# and an inverted residual (expand_ratio 6); lukemelas numbers its BatchNorms per block from _bn0.
SEPARABLE_PARTS = (
    ("_depthwise_conv", "conv_dw"),
    ("_bn1", "bn1"),
    ("_project_conv", "conv_pw"),
    ("_bn2", "bn2"),
)
INVERTED_PARTS = (
    ("_expand_conv", "conv_pw"),
    ("_bn0", "bn1"),
    ("_depthwise_conv", "conv_dw"),
    ("_bn1", "bn2"),
    ("_project_conv", "conv_pwl"),
    ("_bn2", "bn3"),
)


def _is_timm_net(model: nn.Module) -> bool:
    from rexbench.models.layouts import TimmNet

    return isinstance(model, TimmNet)


def lukemelas_table(model: nn.Module) -> dict[str, str]:
    """lukemelas module path -> rexbench module path, for every module with tensors of a timm-layout
    EfficientNet(-Lite): lukemelas numbers the blocks 0..N-1 in order, timm by stage and index."""
    from rexbench.models.layouts import DepthwiseSeparable

    table = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    flat = 0
    for i, stage in enumerate(model.blocks):
        for j, block in enumerate(stage):
            parts = SEPARABLE_PARTS if isinstance(block, DepthwiseSeparable) else INVERTED_PARTS
            for theirs, ours in parts:
                table[f"_blocks.{flat}.{theirs}"] = f"blocks.{i}.{j}.{ours}"
            flat += 1
    return table
