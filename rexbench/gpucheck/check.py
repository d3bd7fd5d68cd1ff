"""The measuring half of the GPU check (benchmarks/gpu_check.py), one model at a time.

Each model is measured by `rexbench profile`'s own code (rexbench.measure.run.profile.profile_models):
built, counted, every configuration prepared on its own (one that fails is one line, the rest go on)
and its output checked against the eager fp32 model's, then all timed interleaved with the drift
anchor, one record each, written. The check adds two things through profile's `measure` step: when
the configurations cannot be timed together, each is timed alone; and while the headline model's
configurations are still prepared, its compile_cl median is compared with independent timers
(rexbench.gpucheck.timers). Then every record is read as rows (rexbench.gpucheck.rows): written, GPU
state, recompilations, CUDA graphs recorded, and the output check that the record carries.

Every step ends in `CheckRow`s: PASS, FAIL, WARN (marked, not failed) or SKIP (not run, and why).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError, first_line
from rexbench.gpucheck.rows import FAIL, PASS, SKIP, WARN, CheckRow, parity_row, record_rows
from rexbench.gpucheck.settings import CheckSettings, configs_for
from rexbench.gpucheck.timers import ArmsFn, agreement_rows, default_arms
from rexbench.measure.backends.inputs import check_dtype, resolve_device
from rexbench.measure.run.compiler import reset_compiler
from rexbench.measure.run.parts import REAL, Parts
from rexbench.measure.run.profile import ConfigFailure, profile_models
from rexbench.measure.run.rounds import PreparedConfig, RoundOptions, measure_prepared

if TYPE_CHECKING:
    from rexbench.measure.backends.base import PreparedModel
    from rexbench.measure.config import RunConfig
    from rexbench.records.schema import Record
    from rexbench.spec import ModelSpec

__all__ = [
    "FAIL",
    "PASS",
    "SKIP",
    "WARN",
    "CheckParts",
    "CheckRow",
    "CheckSettings",
    "check_model",
    "configs_for",
]

BUDGET_SPENT = "budget spent"


@dataclass(frozen=True)
class CheckParts:
    """What the check measures with: the profile path's parts (rexbench.measure.run.parts) and the
    timers the headline model's median is compared with. The real ones by default; tests pass fakes
    here, as they do to profile_models."""

    profile: Parts = REAL
    timer_arms: ArmsFn = default_arms


REAL_CHECK = CheckParts()


@dataclass
class ModelResult:
    records: list[Record] = field(default_factory=list)
    rows: list[CheckRow] = field(default_factory=list)
    seconds: float = 0.0


def check_model(
    spec: str,
    settings: CheckSettings,
    *,
    parts: CheckParts = REAL_CHECK,
    deadline: float | None = None,
) -> ModelResult:
    """Everything the check does with one model; never raises (but KeyboardInterrupt).

    deadline: a time.monotonic() value after which no further configuration is prepared (each
    one left is a SKIP row); what was prepared is still measured and checked."""
    t0 = time.perf_counter()
    check = _ModelCheck(spec, settings, parts, deadline)
    try:
        check.run()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # anything unforeseen is one line, and the check goes on
        check.model_rows.append(CheckRow("model", spec, FAIL, _line(exc)))
    finally:
        reset_compiler()
        _empty_cache(settings.device)
    return ModelResult(check.records, check.rows(), time.perf_counter() - t0)


class _ModelCheck:
    """One model's check: profile_models with the check's measure step, and the rows it gathers."""

    def __init__(
        self, spec: str, settings: CheckSettings, parts: CheckParts, deadline: float | None
    ) -> None:
        self.spec, self.settings, self.parts, self.deadline = spec, settings, parts, deadline
        self.configs = configs_for(spec, settings)
        self.prepared: dict[str, CheckRow] = {}  # by configuration label
        self.timing: list[CheckRow] = []
        self.agreement: list[CheckRow] = []
        self.model_rows: list[CheckRow] = []
        self.records: list[Record] = []

    def run(self) -> None:
        device = resolve_device(self.settings.device)
        configs = [c for c in self.configs if self._runs_on(device, c)]
        if not configs:
            return
        profile = replace(self.parts.profile, prepare=self._in_budget(self.parts.profile.prepare))
        profile_models(  # its records are kept as they are measured (`_measure`)
            [self.spec],
            configs,
            out_dir=self.settings.out_dir,
            on_failure=self._failed,
            round_size=self.settings.round_size,
            parts=profile,
            measure=self._measure,
        )

    def rows(self) -> list[CheckRow]:
        """Prepare rows in configuration order, then timing failures, what each record says, each
        record's output check, the timer agreement, and a failure of the model as a whole."""
        rows = [self.prepared[c.label] for c in self.configs if c.label in self.prepared]
        rows += self.timing
        for record in self.records:
            rows += record_rows(record)
        rows += [parity_row(record) for record in self.records]
        return rows + self.agreement + self.model_rows

    def _subject(self, label: str) -> str:
        return f"{self.spec} {label}"

    def _runs_on(self, device: str, config: RunConfig) -> bool:
        """Whether the device runs the configuration's dtype (the check profile_models makes of
        every configuration before it builds a model); else its row: a SKIP in a dry run."""
        try:
            check_dtype(device, config.dtype)
        except RexbenchError as exc:
            dry = self.settings.dry_run
            status, detail = (SKIP, f"{exc} (a dry run on this CPU)") if dry else (FAIL, str(exc))
            self.prepared[config.label] = CheckRow(
                "prepare", self._subject(config.label), status, detail
            )
            return False
        return True

    def _in_budget(self, prepare: Callable[..., PreparedModel]) -> Callable[..., PreparedModel]:
        """`prepare`, refused once the deadline has passed: profile_models then passes the
        configuration to `_failed` as not prepared, and goes on with those prepared already."""

        def prepare_in_budget(model: Any, config: RunConfig, **kwargs: Any) -> PreparedModel:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise RexbenchError(BUDGET_SPENT)
            return prepare(model, config, **kwargs)

        return prepare_in_budget

    def _failed(self, failure: ConfigFailure) -> None:
        # profile names the model and backend before the reason: "... (PyTorch 2.x): budget spent"
        spent = failure.reason.endswith(BUDGET_SPENT)
        status, detail = (SKIP, BUDGET_SPENT) if spent else (FAIL, failure.reason)
        row = CheckRow("prepare", self._subject(failure.config), status, detail)
        self.prepared[failure.config] = row

    def _measure(
        self,
        spec: ModelSpec,
        items: Sequence[PreparedConfig],
        base_env: dict[str, Any],
        options: RoundOptions,
    ) -> list[Record]:
        """profile's measure step: every prepared configuration's row, the records (interleaved,
        else one configuration at a time), and the headline's timer agreement while it is prepared."""
        for item in items:
            self.prepared[item.config.label] = _prepared_row(self._subject(item.config.label), item)
        records = self._timed(spec, items, base_env, options)
        self.records += records
        if self.spec == self.settings.headline:
            self.agreement = agreement_rows(
                items, records, options.ops, self.settings, self.parts.timer_arms
            )
        return records

    def _timed(
        self,
        spec: ModelSpec,
        items: Sequence[PreparedConfig],
        base_env: dict[str, Any],
        options: RoundOptions,
    ) -> list[Record]:
        """All configurations interleaved; when that fails, each one alone (one line per failure)."""
        try:
            return measure_prepared(spec, items, base_env, options)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            self.timing.append(CheckRow("profile", f"{spec} (interleaved)", FAIL, _line(exc)))
        records: list[Record] = []
        for item in items:
            try:
                records += measure_prepared(spec, [item], base_env, options)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                subject = self._subject(item.config.label)
                self.timing.append(CheckRow("profile", subject, FAIL, _line(exc)))
        return records


def _prepared_row(subject: str, item: PreparedConfig) -> CheckRow:
    prepared = item.prepared
    compiled = f"compiled in {prepared.compile_s:.1f} s" if prepared.compile_s else "not compiled"
    if prepared.cudagraphs is not None:
        compiled += f"; CUDA graph warm-up {prepared.cudagraphs['warmup_calls']} call(s)"
    detail = f"{compiled}; input {tuple(prepared.input.shape)} {prepared.to_dict()['input_dtype']}"
    return CheckRow("prepare", subject, PASS, detail)


def _line(exc: BaseException) -> str:
    """A RexbenchError's message (one line already), else `Type: first line`."""
    return str(exc) if isinstance(exc, RexbenchError) else first_line(exc)


def _empty_cache(device: str) -> None:
    if device.startswith("cuda"):
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:
            pass
