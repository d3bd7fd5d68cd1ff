"""Model specs: what the user typed, parsed into a canonical, hashable description. Pure, no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.registry import MODELS

SOURCES = ("zoo", "timm", "torchvision", "py")


@dataclass(frozen=True)
class ModelSpec:
    """A model to build. `str(spec)` is the canonical string used in records, tables and baselines.

    source: "zoo" for the built-in registry, or an external library ("timm", "torchvision", "py").
    name: the canonical registry name, or the external name ("resnet50", "pkg.mod:factory").
    kwargs: builder keyword arguments given in the spec, as sorted (key, value) pairs.
    """

    source: str
    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        if self.source == "zoo":
            return self.name
        text = f"{self.source}:{self.name}"
        if self.kwargs:
            text += "?" + "&".join(f"{k}={v}" for k, v in self.kwargs)
        return text

    @property
    def kwargs_dict(self) -> dict[str, Any]:
        return dict(self.kwargs)


def parse(text: str) -> ModelSpec:
    """Parse a model name or spec. Zoo names resolve aliases to the canonical name.

    Raises RexbenchError with a one-line, actionable message for anything that does not parse.
    """
    text = text.strip()
    if not text:
        raise RexbenchError("empty model name; run `rexbench models` for the list")
    prefix, sep, rest = text.partition(":")
    if sep and prefix in SOURCES[1:]:
        from rexbench.models.external import parse_external  # pure parsing, no heavy imports

        return parse_external(prefix, rest)
    return ModelSpec("zoo", MODELS.canonical(text))
