"""A whole gate run: which models, measured (or counted) now like their baselines, judged by the
checks -> a `GateReport`. Progress goes out through `Hooks` (rexbench.gate.measuring); no Typer or
Rich here.

Settings come from the request, else from `[tool.rexbench.gate]` (rexbench.gate.config), else the
defaults. User errors are RexbenchError, as everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.gate.measuring import Hooks, Quiet, measure_like

if TYPE_CHECKING:
    from rexbench.gate.checks import Verdict
    from rexbench.gate.config import GateConfig
    from rexbench.gate.contended import Attempts
    from rexbench.gate.evaluate import GateOptions
    from rexbench.gate.report import GateReport
    from rexbench.measure.run.workers import Isolation
    from rexbench.records.schema import Record
    from rexbench.spec import ModelSpec


def select_specs(models: Sequence[str] | None, all_models: bool) -> list[ModelSpec]:
    """Parsed specs of MODEL... or, with --all, of every registered model (not both)."""
    from rexbench.registry import MODELS
    from rexbench.spec import parse

    if all_models and models:
        raise RexbenchError("give MODEL... or --all, not both")
    names = MODELS.names() if all_models else list(models or [])
    return [parse(name) for name in dict.fromkeys(names)]


@dataclass(frozen=True)
class GateRequest:
    """What to gate and how (the options of `rexbench gate`). An unset value (None, False, empty)
    takes `[tool.rexbench.gate]`'s; `checks` add to (or replace by metric) the file's and defaults."""

    models: tuple[str, ...] = ()
    all_models: bool = False
    baseline: Path | None = None
    from_records: tuple[Path, ...] = ()
    checks: tuple[str, ...] = ()
    counts_only: bool = False
    strict: bool = False
    fail_on_inconclusive: bool = False
    require_same_source: bool = False
    runs: int | None = None
    warmup: int | None = None
    attempts: int | None = None  # measurements per model when they are contended (default 3)
    isolation: Isolation | None = None  # worker processes or not (rexbench.measure.run.workers)


def run_gate(
    request: GateRequest, hooks: Hooks | None = None, config: GateConfig | None = None
) -> GateReport:
    """Judge the requested models against their baselines (config: default, the pyproject.toml
    found from the working directory)."""
    from rexbench.gate.config import load_config
    from rexbench.gate.contended import MAX_ATTEMPTS
    from rexbench.gate.report import GateReport
    from rexbench.records.store import read_counts

    cfg = config if config is not None else load_config()
    options = gate_options(request, cfg)
    root = request.baseline or cfg.baseline or Path("baselines")
    specs = _specs(request, cfg)
    counts = read_counts(root, missing_ok=not request.counts_only)
    hooks = hooks if hooks is not None else Quiet()
    if request.counts_only:
        verdicts, notes = _counts_gate(specs, counts, root, options, hooks)
    else:
        run = _FullGate(
            root=root,
            counts=counts,
            options=options,
            hooks=hooks,
            runs=request.runs if request.runs is not None else cfg.runs,
            warmup=request.warmup if request.warmup is not None else cfg.warmup,
            attempts=request.attempts or cfg.attempts or MAX_ATTEMPTS,
            isolation=request.isolation,
        )
        verdicts, notes = run.judge(specs, list(request.from_records))
    return GateReport(
        verdicts,
        notes,
        strict=request.strict or cfg.strict,
        fail_on_inconclusive=request.fail_on_inconclusive or cfg.fail_on_inconclusive,
    )


def gate_options(request: GateRequest, cfg: GateConfig) -> GateOptions:
    """The checks and judging settings: request over pyproject.toml over the defaults."""
    from rexbench.gate import checks as rules
    from rexbench.gate.evaluate import MAX_LOAD_PER_CORE, GateOptions

    checks = rules.merge_checks(rules.DEFAULT_CHECKS, cfg.checks, list(request.checks))
    return GateOptions(
        tuple(checks),
        alpha=cfg.alpha if cfg.alpha is not None else rules.ALPHA,
        require_same_source=request.require_same_source or cfg.require_same_source,
        max_load_per_core=(
            cfg.max_load_per_core if cfg.max_load_per_core is not None else MAX_LOAD_PER_CORE
        ),
    )


def _specs(request: GateRequest, cfg: GateConfig) -> list[str]:
    """MODEL... or --all; else the file's models (unless records are given); else none."""
    if request.all_models or request.models:
        specs = [str(s) for s in select_specs(request.models, request.all_models)]
    elif cfg.models and not request.from_records:
        specs = [str(s) for s in select_specs(cfg.models, False)]
    else:
        specs = []
    if not specs and not request.from_records:
        raise RexbenchError(
            "give MODEL..., --all, --from RECORDS, or models = [...] in [tool.rexbench.gate] of pyproject.toml"
        )
    return specs


def _counts_gate(
    specs: list[str], counts: dict[str, Any], root: Path, options: GateOptions, hooks: Hooks
) -> tuple[list[Verdict], list[str]]:
    """Count every model now at the inputs of its counts.json entry and compare exactly."""
    from rexbench.gate.baseline import count_entry, entry_shapes
    from rexbench.gate.evaluate import evaluate_model
    from rexbench.records.store import counts_path
    from rexbench.spec import parse

    missing = [s for s in specs if s not in counts]
    if missing:
        raise RexbenchError(
            f"no counts baseline for {', '.join(missing)} in {counts_path(root)}: add with "
            f"`rexbench baseline save --counts-only {' '.join(missing)}`"
        )
    verdicts, notes = [], []
    with hooks.counting() as counting:
        for spec in specs:
            counting(spec)
            now = count_entry(parse(spec), entry_shapes(counts[spec]))
            more, why = evaluate_model(
                spec, options, counts_baseline=counts[spec], counts_now=now, counts_only=True
            )
            verdicts += more
            notes += why
    return verdicts, notes


@dataclass
class _FullGate:
    """Counts and latency: records given (--from) or measured now like this machine's baselines."""

    root: Path
    counts: dict[str, Any]
    options: GateOptions
    hooks: Hooks
    runs: int | None = None
    warmup: int | None = None
    attempts: int = 3
    isolation: Isolation | None = None
    baselines: list[Record] = field(default_factory=list)
    fingerprint: dict[str, Any] | None = None

    def judge(self, specs: list[str], given: list[Path]) -> tuple[list[Verdict], list[str]]:
        from rexbench.gate.baseline import load_baselines

        self.baselines = load_baselines(self.root)
        current: dict[str, list[Record]] = {}
        if given:
            current = _given_records(given, specs)
            specs = specs or list(current)
            if not current:
                raise RexbenchError(
                    f"no records of {', '.join(specs)} in {', '.join(map(str, given))}"
                )
        self._check_first(specs, measure=not given)
        verdicts, notes = [], []
        for spec in specs:
            more, why = self._model(spec, current.get(spec), measure=not given)
            verdicts += more
            notes += why
        return verdicts, notes

    def _check_first(self, specs: list[str], measure: bool) -> None:
        """What would fail after minutes of measuring fails now, for every model at once: no
        baseline, a changed py: source (--require-same-source), an instruction check whose
        baselines have no instruction count, or valgrind missing for it."""
        from rexbench.gate.evaluate import refuse_changed_source
        from rexbench.measure.counting.instructions import check_available

        for spec in specs:
            known = [b for b in self.baselines if b.model.spec == spec]
            if not known and spec not in self.counts:
                raise RexbenchError(
                    f"no baseline for {spec} under {self.root}: create one with "
                    f"`rexbench baseline save {spec}`"
                )
            if measure and self.options.require_same_source:
                refuse_changed_source(spec, known, self.counts.get(spec))
        checks = self.options.instruction_checks
        if not (measure and checks):
            return
        counted = {b.model.spec for b in self.baselines if "instructions" in b.counts}
        bare = [spec for spec in specs if spec not in counted]
        if bare:
            raise RexbenchError(
                f"--check {checks[0].text}: the baselines of {', '.join(bare)} under {self.root} have "
                f"no instruction count; save them with `rexbench baseline save {' '.join(bare)} "
                "--instructions` (minutes per configuration), or drop the check"
            )
        check_available()

    def _model(
        self, spec: str, current: list[Record] | None, measure: bool
    ) -> tuple[list[Verdict], list[str]]:
        """The verdicts of one model; without records of it, measured now (or counted now)."""
        from rexbench.gate.baseline import count_entry, entry_shapes
        from rexbench.gate.evaluate import evaluate_model
        from rexbench.spec import parse

        known = [b for b in self.baselines if b.model.spec == spec]
        other: list[str] = []
        tries: Attempts | None = None
        if measure:
            current, other, tries = self._measure(spec, known)
        counts_now = None
        if not current:  # count now, at the inputs of the baseline
            shapes = entry_shapes(self.counts[spec]) if spec in self.counts else []
            shapes += [b.counts["input_shape"] for b in known if b.counts.get("input_shape")]
            counts_now = count_entry(parse(spec), shapes)
        gave_up = tries is not None and tries.gave_up is not None and not current
        verdicts, notes = evaluate_model(
            spec,
            replace(self.options, checks=tuple(self.options.count_checks))
            if gave_up
            else self.options,
            current=current or [],
            baselines=self.baselines,
            counts_baseline=self.counts.get(spec),
            counts_now=counts_now,
            other_machines=other,
        )
        if tries is not None:
            verdicts += self._attempted(spec, known, tries, verdicts, gave_up)
            notes += tries.notes(spec)
        if self.options.instruction_checks:  # counted even when the timing gave up: load-proof
            verdicts += self._instructions(spec, known, None if measure else current or [])
        return verdicts, notes

    def _instructions(
        self, spec: str, known: list[Record], given: list[Record] | None
    ) -> list[Verdict]:
        """Instruction checks: the given records' counts, or each baseline configuration's
        instructions counted now (rexbench.measure.counting.instructions), against the baselines'."""
        from rexbench.gate.instructions import instruction_verdicts
        from rexbench.measure.config import RunConfig
        from rexbench.measure.counting.instructions import counts_or_reason, why_not
        from rexbench.measure.machine.env import fingerprint

        checks = self.options.instruction_checks
        if given is not None:
            current = {r.run.config_id: (r.counts, r.env) for r in given}
            return instruction_verdicts(checks, spec, known, current)
        self.fingerprint = self.fingerprint or fingerprint()
        current = {}
        for config_id, base in {b.run.config_id: b for b in known}.items():
            config = RunConfig.from_dict(base.run.config)
            if not any("instructions" in b.counts for b in known if b.run.config_id == config_id):
                current[config_id] = ({}, self.fingerprint)  # nothing to compare with: not counted
                continue
            if why_not(config) is None:
                self.hooks.note(
                    f"counting the instructions of {spec} ({config.label}) under "
                    "callgrind: a few minutes"
                )
            current[config_id] = (counts_or_reason(spec, config), self.fingerprint)
        return instruction_verdicts(checks, spec, known, current)

    def _attempted(
        self,
        spec: str,
        known: list[Record],
        tries: Attempts,
        verdicts: list[Verdict],
        gave_up: bool,
    ) -> list[Verdict]:
        """Attempts in the latency verdicts' details; inconclusive ones when none was clean."""
        from rexbench.gate.baseline import baselines_of
        from rexbench.gate.contended import contended_verdicts

        for v in verdicts:
            if v.config != "counts":
                v.details["attempts"] = tries.to_list()
        if not gave_up:
            return []
        mine, _ = baselines_of(spec, known, (self.fingerprint or {}).get("machine_id", ""))
        labels = list(dict.fromkeys(b.run.label for b in mine))
        return contended_verdicts(spec, labels, self.options.latency_checks, tries)

    def _measure(
        self, spec: str, known: list[Record]
    ) -> tuple[list[Record], list[str], Attempts | None]:
        """(records measured now like this machine's baselines of `spec` - re-measured while the
        machine is contended, rexbench.gate.contended -, differences to another machine's baseline
        when this one has none, the attempts)."""
        from rexbench.gate.baseline import baselines_of
        from rexbench.gate.contended import measure_until_clean
        from rexbench.measure.machine.env import differences
        from rexbench.measure.machine.env import fingerprint as take_fingerprint

        if self.fingerprint is None:
            self.fingerprint = take_fingerprint()
        mine, others = baselines_of(spec, self.baselines, self.fingerprint["machine_id"])
        if mine and self.options.latency_checks:
            self.hooks.note(f"measuring {spec} like its baseline ({len(mine)} configuration(s))")

            def attempt() -> list[Record]:
                return measure_like(
                    spec,
                    mine,
                    runs=self.runs,
                    warmup=self.warmup,
                    hooks=self.hooks,
                    abort=True,
                    isolation=self.isolation,
                )

            measured, tries = measure_until_clean(attempt, self.attempts)
            return measured, [], tries
        if others:
            return [], differences(others[0].env, self.fingerprint), None
        return [], [], None


def _given_records(paths: list[Path], specs: list[str]) -> dict[str, list[Record]]:
    """{spec: records} of the given files/folders, only of `specs` when there are any."""
    from rexbench.records.store import load_records

    current: dict[str, list[Record]] = {}
    for record in load_records(paths):
        if not specs or record.model.spec in specs:
            current.setdefault(record.model.spec, []).append(record)
    return current
