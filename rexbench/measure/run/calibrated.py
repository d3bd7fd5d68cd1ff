"""The configurations of a profile run that quantize to int8 (their backend `calibrates` them):
what they are calibrated on, and their fidelity in the record.

Such a configuration is prepared with the calibration half of the fidelity set, normalised as
the run's weights expect (rexbench.measure.backends.calibration). Before the model is prepared,
the eager fp32 logits of the evaluation half are taken once per input shape (`references`); after
its output check, the configuration's own logits of the same inputs give its fidelity, which goes
into the record's `parity` with the word on what judged it (`add_fidelity`). The fidelity's
relative L2 gives the verdict, against the int8 tolerance (rexbench.measure.checks.parity): on the
kind of input the calibration saw, where a trained model's ranges were measured, unlike the seeded
random input of the output check. Its top-1 agreement says how good the quantized model is; the
verdict only whether it still computes the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.measure.backends.calibration import Calibration
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.checks import fidelity, parity
from rexbench.measure.checks.parity import TOLERANCES

if TYPE_CHECKING:
    from torch import nn

    from rexbench.measure.backends.base import PreparedModel
    from rexbench.measure.config import RunConfig

JUDGED_BY = (
    f"fidelity: rel_l2 of the logits on the evaluation half <= {TOLERANCES['int8']:g} (int8 "
    "tolerance); the seeded input's numbers recorded, not judged"
)
#: where the fidelity could not be taken (a model whose output is no N x C array of logits)
JUDGED_BY_SEEDED = (
    f"output parity on the seeded input, rel_l2 <= {TOLERANCES['int8']:g} (int8 tolerance); "
    "no fidelity"
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
    """Put the configuration's fidelity into its output check (the record's `parity`), with the
    verdict it gives (parity.judge_by_fidelity) and a word on what judged; the prepared model's
    invalid note follows the verdict. Nothing for a configuration that does not quantize."""
    from rexbench.measure.run.rounds import first_line
    from rexbench.models.packaged import has_trained_weights

    if not calibrates(prepared.config):
        return
    check["judged_by"] = JUDGED_BY_SEEDED
    if not isinstance(reference, fidelity.Reference):
        check["fidelity"] = {"error": first_line(reference) if reference else "no reference"}
        return
    try:
        check["fidelity"] = fidelity.measure(prepared, reference, has_trained_weights(weights))
    except Exception as exc:  # an output that is no N x C array of logits
        check["fidelity"] = {"error": first_line(exc)}
        return
    if check.get("rel_l2") is not None:
        was = None if check["valid"] else parity.invalid_note(check)
        parity.judge_by_fidelity(check, check["fidelity"]["rel_l2"])
        check["judged_by"] = JUDGED_BY
        prepared.notes[:] = [note for note in prepared.notes if note != was]
        if not check["valid"]:
            prepared.notes.append(parity.invalid_note(check))
