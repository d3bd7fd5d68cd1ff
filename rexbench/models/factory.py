"""create_model: spec -> built, eval-mode nn.Module on CPU, optionally with a checkpoint loaded."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from rexbench.registry import MODELS
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
    """Build a model by name or spec, load `weights` if given (format detected), return it in eval mode."""
    spec = parse(name) if isinstance(name, str) else name
    model = build(spec, num_classes=num_classes)
    if weights is not None:
        from rexbench.models.checkpoints import load_checkpoint

        load_checkpoint(model, weights, model_name=str(spec))
    return model.eval()
