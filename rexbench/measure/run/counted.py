"""What a profile knows of a model before any configuration is prepared: the input shape each
configuration measures, and the counts (params, macs_conv) at that shape, as a record stores them.
Both the in-process path (rexbench.measure.run.profile) and the worker processes' parent
(rexbench.measure.run.isolated) count the model here, once per input shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError, first_line
from rexbench.measure.config import RunConfig
from rexbench.measure.run.rounds import ProfileEvent, RoundOptions
from rexbench.spec import ModelSpec

if TYPE_CHECKING:
    from torch import nn

Shape = tuple[int, int, int]

MACS_CONVENTION = (
    "macs_conv: Conv + Linear multiply-adds of one image (the paper's FLOPs); "
    "GFLOP/s = 2 x macs_conv x batch / median"
)


def built_and_counted(
    spec: ModelSpec, configs: Sequence[RunConfig], options: RoundOptions
) -> tuple[nn.Module, list[Shape], dict[Shape, dict[str, Any]]]:
    """The model built (with options.weights, else seeded: parity.seeded_model), the shape each configuration measures, and the
    counts at each of those shapes; the progress hears of the build and of each count."""
    from rexbench.measure.checks.parity import seeded_model
    from rexbench.models.shapes import format_shape

    name = str(spec)
    options.emit(ProfileEvent("build", name))
    model = seeded_model(spec, options.weights)  # the network every worker builds too
    shapes = [measured_shape(spec, model, c) for c in configs]
    counts: dict[Shape, dict[str, Any]] = {}
    for shape in dict.fromkeys(shapes):
        options.emit(ProfileEvent("count", name, format_shape(shape)))
        counts[shape] = count(model, shape, name)
    return model, shapes, counts


def measured_shape(spec: ModelSpec, model: nn.Module, config: RunConfig) -> Shape:
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
