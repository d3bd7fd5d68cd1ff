"""What a profile knows of a model before any configuration is prepared: the input shape each
configuration measures, and the counts (params, macs_conv) at that shape, as a record stores them.
Both the in-process path (rexbench.measure.run.profile) and the worker processes' parent
(rexbench.measure.run.isolated) count the model here, once per input shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError, first_line
from rexbench.measure.config import RunConfig
from rexbench.measure.run.rounds import ProfileEvent
from rexbench.models.shapes import format_shape
from rexbench.spec import ModelSpec

if TYPE_CHECKING:
    from torch import nn

    from rexbench.measure.run.rounds import RoundOptions

MACS_CONVENTION = (
    "macs_conv: Conv + Linear multiply-adds of one image (the paper's FLOPs); "
    "GFLOP/s = 2 x macs_conv x batch / median"
)


def counted_shapes(
    spec: ModelSpec, model: nn.Module, configs: Sequence[RunConfig], options: RoundOptions
) -> tuple[list[tuple[int, int, int]], dict[tuple[int, ...], dict[str, Any]]]:
    """Each configuration's input shape, and the counts at each of these shapes, counted once
    per shape (a "count" event before each)."""
    name = str(spec)
    shapes = [measured_shape(spec, model, c) for c in configs]
    counts: dict[tuple[int, ...], dict[str, Any]] = {}
    for shape in dict.fromkeys(shapes):
        options.emit(ProfileEvent("count", name, format_shape(shape)))
        counts[shape] = count(model, shape, name)
    return shapes, counts


def measured_shape(spec: ModelSpec, model: nn.Module, config: RunConfig) -> tuple[int, int, int]:
    """The (C, H, W) this config measures: its input_shape, its resolution, or the model's own
    (rexbench.models.shapes.resolve_input_shape, which also checks the sizes)."""
    from rexbench.models.shapes import resolve_input_shape

    return resolve_input_shape(spec, model, config.input_shape, config.resolution)


def count(model: nn.Module, shape: Sequence[int], name: str) -> dict[str, Any]:
    """params and macs_conv for one image of `shape` (C, H, W), as a record stores them."""
    from rexbench.measure.counting.counts import count_model

    full = (1, *shape)
    try:
        counts = count_model(model, full, counters=("conv",))
    except RuntimeError as exc:  # e.g. an input the model cannot take
        raise RexbenchError(
            f"could not run {name} on input {'x'.join(map(str, shape))}: {first_line(exc)}"
        ) from exc
    return {
        "input_shape": list(full),
        "params": counts.params_total,
        "params_trainable": counts.params_trainable,
        "macs_conv": counts.macs_conv,
        "conventions": MACS_CONVENTION,
    }
