"""The configurations of a profile run that quantize to int8 (their backend `calibrates` them):
what they are calibrated on, and their fidelity in the record.

Such a configuration is prepared with the calibration half of the fidelity set, normalised as
the run's weights expect (rexbench.measure.backends.calibration). Before the model is prepared,
the eager fp32 logits of the evaluation half are taken once per input shape (`references`); after
its output check, the configuration's own logits of the same inputs give its fidelity, which goes
into the record's `parity` with the word on what judged it (`add_fidelity`). The verdict stays the
output check's, with the int8 tolerance (rexbench.measure.checks.parity): fidelity says how good
the quantized model is, the check whether it is still the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.measure.backends.calibration import Calibration
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.checks import fidelity
from rexbench.measure.checks.parity import TOLERANCES

if TYPE_CHECKING:
    from torch import nn

    from rexbench.measure.backends.base import PreparedModel
    from rexbench.measure.config import RunConfig

JUDGED_BY = (
    f"output parity on the seeded input, rel_l2 <= {TOLERANCES['int8']:g} (int8 tolerance); "
    "fidelity on the evaluation half recorded, not judged"
)


def calibrates(config: RunConfig) -> bool:
    """Whether the configuration quantizes to int8 with calibration images."""
    return BACKENDS.get(config.runtime).calibrates(config)


def calibration(config: RunConfig, weights: str | Path | None) -> Calibration | None:
    """What `config` is calibrated on, normalised as `weights` expect; None where it does not
    quantize."""
    return Calibration.for_weights(weights) if calibrates(config) else None


def references(
    model: nn.Module,
    configs: Sequence[RunConfig],
    shapes: Sequence[tuple[int, ...]],
    weights: str | Path | None,
) -> dict[tuple[int, ...], fidelity.Reference | Exception]:
    """The evaluation half and the eager fp32 logits of it, per input shape of a configuration
    that quantizes (none: {}), or the exception that taking them raised (the configuration's
    fidelity then says it)."""
    out: dict[tuple[int, ...], fidelity.Reference | Exception] = {}
    for config, shape in zip(configs, shapes, strict=True):
        if calibrates(config) and shape not in out:
            try:
                out[shape] = fidelity.reference(model, shape, weights)
            except Exception as exc:  # a model whose input is no RGB image, whose output no logits
                out[shape] = exc
    return out


def add_fidelity(
    check: dict[str, Any],
    prepared: PreparedModel,
    reference: fidelity.Reference | Exception | None,
    weights: str | Path | None,
) -> None:
    """Put the configuration's fidelity and what judged it into its output check (the record's
    `parity`); nothing for a configuration that does not quantize."""
    from rexbench.measure.run.rounds import first_line
    from rexbench.models.packaged import has_trained_weights

    if not calibrates(prepared.config):
        return
    check["judged_by"] = JUDGED_BY
    if not isinstance(reference, fidelity.Reference):
        check["fidelity"] = {"error": first_line(reference) if reference else "no reference"}
        return
    try:
        check["fidelity"] = fidelity.measure(prepared, reference, has_trained_weights(weights))
    except Exception as exc:  # an output that is no N x C array of logits
        check["fidelity"] = {"error": first_line(exc)}
