"""The fidelity of tune's candidates: top-1 agreement, top-5 overlap and relative L2 of the logits
against eager fp32 on the evaluation half of the fidelity set (rexbench.measure.checks.fidelity,
rexbench.models.photos), measured once per computation (candidates that differ only in threads,
batch or allocator share it) on the prepared model itself: in the worker process that prepared it
(its `logits` command) or, for a run in one process, here.

`FidelityProbe.measure` is what profile_models times a group with (its `measure` step): it times
them as profile does (rounds.measure_prepared), then measures the fidelity of each prepared
configuration whose 216 calls the search can afford, and puts it into the record's output check
(`parity.fidelity`). The
eager fp32 reference is this process's own model, built as each worker builds its copy: the same
seeded initialisation and BatchNorm statistics without a checkpoint (rexbench.measure.checks.parity
.seeded_model, nontrivial_weights).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.measure.checks.fidelity import Fidelity, fidelity, torch_logits
from rexbench.measure.run.rounds import PreparedConfig, RoundOptions, first_line, measure_prepared
from rexbench.models.photos import fidelity_inputs, views
from rexbench.tune.space import numerics_of

if TYPE_CHECKING:
    import numpy as np

    from rexbench.records.schema import Record
    from rexbench.spec import ModelSpec

HALF = "evaluation"
SET = (
    f"the {HALF} half of the fidelity set ({len(views(HALF))} views of scikit-image's photographs)"
)


@dataclass
class FidelityProbe:
    """Fidelity per computation (`numerics_of` a configuration): a Fidelity, or why there is none.
    folder: where the inputs and each configuration's logits pass to worker processes (.npy).
    afford(seconds): whether a measurement of about that long may be taken now (the search's
    budget); one that may not is left for a later rung."""

    weights: str | Path | None
    folder: Path
    results: dict[str, Fidelity | str] = field(default_factory=dict)
    afford: Callable[[float], bool] = lambda seconds: True
    spent_s: float = 0.0  # seconds spent measuring fidelity (and the references), in all
    _references: dict[tuple[int, ...], tuple[np.ndarray, Path] | str] = field(default_factory=dict)

    def measure(
        self,
        spec: ModelSpec,
        items: Sequence[PreparedConfig],
        base_env: dict[str, Any],
        options: RoundOptions,
    ) -> list[Record]:
        """Time the prepared configurations (as profile does), then measure the fidelity of each
        one whose computation has none yet and that it can afford, while its worker is still up;
        each record's output check gets its computation's fidelity (`parity.fidelity`)."""
        records = measure_prepared(spec, items, base_env, options)
        for item, record in zip(items, records, strict=True):
            key = numerics_of(item.config)
            median = (record.summary or {}).get("median")
            calls = -(-len(views(HALF)) // item.config.batch_size)
            if key not in self.results and median is not None and self.afford(calls * median / 1e9):
                start = time.monotonic()
                self.results[key] = self._measured(spec, item)
                self.spent_s += time.monotonic() - start
            if key in self.results:
                record.parity["fidelity"] = entry(self.results[key])
        return records

    @property
    def has_reference(self) -> bool:
        return bool(self._references)

    def of(self, config: Any) -> Fidelity | str | None:
        """The fidelity measured for a configuration's computation, why there is none, or None."""
        return self.results.get(numerics_of(config))

    def _measured(self, spec: ModelSpec, item: PreparedConfig) -> Fidelity | str:
        shape = tuple(item.counts.get("input_shape") or ())[1:]
        reference = self._reference(spec, shape)
        if isinstance(reference, str):
            return reference
        logits, inputs = reference
        try:
            mine = self._logits(item, inputs)
            return fidelity(mine.reshape(len(mine), -1), logits)
        except Exception as exc:  # a worker gone, an output that is no N x C array of classes
            return f"fidelity not measured: {first_line(exc)}"

    def _logits(self, item: PreparedConfig, inputs: Path) -> np.ndarray:
        import numpy as np

        if item.remote is None:
            from rexbench.measure.checks.logits import prepared_logits

            return prepared_logits(item.prepared, np.load(inputs))  # type: ignore[arg-type]
        out = self.folder / f"logits-{numerics_of(item.config)}.npy"
        reply = item.remote.ask({"op": "logits", "inputs": str(inputs), "out": str(out)})
        if reply is None:
            raise RuntimeError(
                f"the worker {item.remote.fault.reason if item.remote.fault else 'ended'}"
            )
        if not reply["ok"]:
            raise RuntimeError(reply["error"])
        return np.load(out)

    def _reference(self, spec: ModelSpec, shape: tuple[int, ...]) -> tuple[np.ndarray, Path] | str:
        """The eager fp32 logits on the evaluation half at this input shape, and the file of those
        inputs; or why there are none (an input that is not 3 x R x R, no scikit-image)."""
        if shape not in self._references:
            try:
                self._references[shape] = self._reference_now(spec, shape)
            except Exception as exc:
                self._references[shape] = f"fidelity not measured: {first_line(exc)}"
        return self._references[shape]

    def _reference_now(self, spec: ModelSpec, shape: tuple[int, ...]) -> tuple[np.ndarray, Path]:
        import numpy as np

        from rexbench.measure.checks.parity import nontrivial_weights, seeded_model
        from rexbench.models.packaged import normalization

        if len(shape) != 3 or shape[0] != 3 or shape[1] != shape[2]:
            raise ValueError(f"the photographs are 3 x R x R inputs, the model takes {shape}")
        inputs = fidelity_inputs(shape[1], HALF, *normalization(self.weights))
        model = seeded_model(spec, self.weights)
        if self.weights is None:
            nontrivial_weights(model)
        logits = torch_logits(model, inputs)
        path = self.folder / f"inputs-{shape[1]}.npy"
        np.save(path, inputs)
        return logits.reshape(len(logits), -1), path


def entry(result: Fidelity | str) -> dict[str, Any]:
    """What a record's `parity.fidelity` keeps: the numbers and the set, or why there are none."""
    return {**result.to_dict(), "set": SET} if isinstance(result, Fidelity) else {"reason": result}
