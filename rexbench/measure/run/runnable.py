"""Which configurations of a run this machine can run. A precision it has no native arithmetic for
(bf16 on a CPU without AVX-512 BF16 or AMX), a dtype the backend does not run (ONNX Runtime and
bf16, int8 from anything but fp32) or a backend that cannot run here (PT2E's x86 quantizer on
another CPU, ONNX Runtime on a GPU without onnxruntime-gpu) makes a configuration unrunnable.

When several configurations are asked for, the unrunnable ones are skipped, each with its one-line
reason, and the others are measured; when one was asked for, or none is left, the first reason is
the run's error. A package that is not installed is not this module's: the run names it and stops
(rexbench.measure.run.installed), since one install makes it work. A skipped configuration is a
`ConfigFailure` with `skipped` set: said in one line, never the run's exit status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rexbench.errors import RexbenchError
from rexbench.measure.backends.inputs import check_dtype
from rexbench.measure.backends.registry import BACKENDS

if TYPE_CHECKING:
    from rexbench.measure.config import RunConfig


def why_not(config: RunConfig, device: str) -> str | None:
    """None when this machine can run `config` on `device` (resolved), else the one-line reason."""
    try:
        check_dtype(device, config.dtype)
    except RexbenchError as exc:
        return str(exc)
    backend = BACKENDS.get(config.runtime)
    return backend.available(device) or backend.refuses(config)


def runnable(
    configs: Sequence[RunConfig], device: str
) -> tuple[list[RunConfig], list[tuple[RunConfig, str]]]:
    """The configurations to measure, and those skipped with their reason; a RexbenchError (the
    first reason) when only one was asked for or none is left."""
    kept: list[RunConfig] = []
    skipped: list[tuple[RunConfig, str]] = []
    for config in configs:
        reason = why_not(config, device)
        if reason is None:
            kept.append(config)
        else:
            skipped.append((config, reason))
    if skipped and (len(configs) == 1 or not kept):
        raise RexbenchError(skipped[0][1])
    return kept, skipped


@dataclass(frozen=True)
class ConfigFailure:
    """A configuration that could not be prepared or checked (an export, a conversion, a
    compilation that failed), or was skipped (a precision this machine cannot run); the other
    configurations of the run are measured all the same."""

    model: str
    config: str
    reason: str
    skipped: bool = False

    @property
    def line(self) -> str:
        known = self.reason.startswith(self.model)
        return self.reason if known else f"{self.model} {self.config}: {self.reason}"
