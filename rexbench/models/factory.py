"""create_model: spec -> built, eval-mode nn.Module on CPU, optionally with a checkpoint loaded;
exact_params: a registered model's parameter count, built on the meta device."""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rexbench.errors import RexbenchError
from rexbench.registry import MODELS, ModelEntry
from rexbench.spec import ModelSpec, parse


def build(spec: ModelSpec, num_classes: int = 1000) -> nn.Module:
    """Build the model a spec names, with random weights, on CPU."""
    if spec.source == "zoo":
        return MODELS.get(spec.name).build(num_classes=num_classes)
    from rexbench.models.external import build as build_external

    return build_external(spec, num_classes=num_classes)


def create_model(
    name: str | ModelSpec, weights: str | Path | None = None, num_classes: int = 1000
) -> nn.Module:
    """Build a model by name or spec, load `weights` if given (a checkpoint file, format detected, or
    the name of a weights package: rexbench.models.packaged), return it in eval mode."""
    from rexbench.models.packaged import packaged, resolve_weights

    spec = parse(name) if isinstance(name, str) else name
    entry = packaged(weights)
    if entry is not None and str(spec) != entry.model:
        raise RexbenchError(
            f"--weights {entry.package} holds {entry.model}'s weights, not {spec}'s; "
            f"give it with {entry.model}"
        )
    model = build(spec, num_classes=num_classes)
    if weights is not None:
        from rexbench.models.checkpoints import load_checkpoint

        load_checkpoint(model, resolve_weights(weights), model_name=str(spec))
    return model.eval()


def exact_params(entry: ModelEntry) -> int | None:
    """Parameters of the model, built on the meta device (no memory, no init cost).

    None only when the model's builder module or function does not exist yet; any other error
    (a broken builder, a missing dependency of the module) propagates.
    """
    return _count_params(entry.builder, tuple(sorted(entry.kwargs.items())))


@functools.cache
def _count_params(builder_path: str, kwargs: tuple[tuple[str, Any], ...]) -> int | None:
    module_name, _, fn_name = builder_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    builder = getattr(module, fn_name, None)
    if builder is None:
        return None
    with torch.device("meta"):
        model = builder(num_classes=1000, **dict(kwargs))
    return sum(p.numel() for p in model.parameters())
