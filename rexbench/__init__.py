"""rexbench: build, count, time and compare ReXNet and the efficient models it is measured against.

Importing this package does no work and does not import torch; the re-exports below import their
modules only when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from torch import nn


def create_model(name: str, weights: str | None = None, num_classes: int = 1000) -> nn.Module:
    """Build a model by name (canonical, alias or external spec), eval mode, on CPU."""
    from rexbench.models.factory import create_model as _create

    return _create(name, weights=weights, num_classes=num_classes)


def list_models() -> list[str]:
    """The canonical names of every built-in model."""
    from rexbench.registry import MODELS

    return MODELS.names()


__all__ = ["__version__", "create_model", "list_models"]
