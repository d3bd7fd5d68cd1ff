"""The `instructions:+N%` check of one model: instruction counts (rexbench.measure.counting.instructions) of
records or counted now, each against a baseline record of the same configuration counted by the
same code (torch, CPU architecture and vendor, valgrind). No Typer or Rich."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rexbench.gate import checks as gate

if TYPE_CHECKING:
    from rexbench.records.schema import Record

#: What must match for two instruction counts to come from the same code: (env section, key).
SAME_CODE = (("software", "torch"), ("cpu", "arch"), ("cpu", "vendor"))


def code_differences(
    base: Record, current_env: Mapping[str, Any], current_counts: Mapping
) -> list[str]:
    """Why two instruction counts are not comparable: torch, architecture, CPU vendor, valgrind."""
    out = []
    for section, key in SAME_CODE:
        a = (base.env.get(section) or {}).get(key)
        b = (current_env.get(section) or {}).get(key)
        if a != b:
            out.append(f"{section}.{key} {a} vs {b}")
    a, b = (
        (c.get("instructions_method") or {}).get("valgrind") for c in (base.counts, current_counts)
    )
    if a != b:
        out.append(f"valgrind {a} vs {b}")
    return out


def instruction_verdicts(
    checks: Sequence[gate.Check],
    spec: str,
    baselines: Sequence[Record],
    current: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]],
) -> list[gate.Verdict]:
    """Instruction checks of one model. current: {config_id: (counts, env)} counted now or taken
    from given records; each is compared with a baseline record of the same configuration (one
    counted by the same code first, whatever the machine: the count does not depend on load)."""
    verdicts = []
    for config_id, (counts, env) in current.items():
        mine = [b for b in baselines if b.model.spec == spec and b.run.config_id == config_id]
        ranked = sorted(
            mine,
            key=lambda b: ("instructions" not in b.counts, bool(code_differences(b, env, counts))),
        )
        label = mine[0].run.label if mine else config_id
        where = {"model": spec, "config": label}
        for check in checks:
            if not ranked:
                why = f"no baseline record of configuration {config_id}"
                verdicts.append(
                    gate.Verdict(**where, check=check.text, outcome=gate.NOT_COMPARABLE, reason=why)
                )
                continue
            base = ranked[0]
            diffs = code_differences(base, env, counts) if "instructions" in base.counts else []
            verdicts.append(gate.compare_instructions(check, base.counts, counts, diffs, **where))
    return verdicts
