"""prepare(model, config): the model made ready to time by the backend the configuration names
(rexbench.measure.backends.registry), on a device checked to exist and in a dtype checked to run
there natively. The caller's model is left as it was, unless it hands the model over (`in_place`).

Call it inside `timing.backend_settings(...)` so that compilation sees the threads and cuDNN/TF32
settings the measurement will use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rexbench.errors import RexbenchError
from rexbench.measure.backends.calibration import Calibration
from rexbench.measure.backends.inputs import DEFAULT_RESOLUTION, check_dtype, resolve_device
from rexbench.measure.backends.registry import BACKENDS

if TYPE_CHECKING:
    from torch import nn

    from rexbench.measure.backends.base import PreparedModel
    from rexbench.measure.config import RunConfig


def prepare(
    model: nn.Module,
    config: RunConfig,
    default_resolution: int = DEFAULT_RESOLUTION,
    *,
    input_shape: Sequence[int] | None = None,
    in_place: bool = False,
    calibration: Calibration | None = None,
) -> PreparedModel:
    """Prepare a deep copy of `model` as `config` says; the input model is left untouched.
    in_place: prepare `model` itself, for a caller that needs it no more (one copy of the weights
    fewer in memory; rexbench.measure.run.profile says why that matters for the timing).

    `default_resolution` is the model's own, used when config.resolution is None; `input_shape`
    (C, H, W), when given, overrides both (see inputs.make_input). `calibration`: what a
    configuration that quantizes to int8 is calibrated on (default: the fidelity set's calibration
    half with ImageNet's normalisation; rexbench.measure.backends.calibration).
    """
    device = resolve_device(config.device)
    check_dtype(device, config.dtype)
    backend = BACKENDS.get(config.runtime)
    refused = backend.refuses(config)
    if refused is not None:
        raise RexbenchError(refused)
    extra = {"calibration": calibration or Calibration()} if backend.calibrates(config) else {}
    return backend.prepare(
        model,
        config,
        device,
        default_resolution=default_resolution,
        input_shape=input_shape,
        in_place=in_place,
        **extra,
    )
