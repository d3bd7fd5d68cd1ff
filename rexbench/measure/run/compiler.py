"""torch.compile's caches across the models of one process: room for the compiled versions of a
forward that several models share, and a clean slate between models (profile and the GPU check)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def compile_room(entries: int) -> Iterator[None]:
    """Let dynamo keep `entries` compiled versions of one forward: models of one class measured
    together (ReXNet x1.0 and x2.0) share their forward's code, and past torch's recompile limit
    (8) a model would silently run eagerly."""
    if entries <= 8:
        yield
        return
    import torch

    dynamo = torch._dynamo.config
    name = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"
    with dynamo.patch(**{name: max(getattr(dynamo, name), entries)}):
        yield


def reset_compiler() -> None:
    """Drop dynamo's caches between models: compiled code of one model is never reused by the
    next, and caches growing past torch._dynamo's recompile limit would fall back to eager."""
    import torch

    torch._dynamo.reset()
