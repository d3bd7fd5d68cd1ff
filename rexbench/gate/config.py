"""`[tool.rexbench.gate]` in the project's pyproject.toml: the gate's settings, kept with the code.

The file is found from the working directory upwards (the first pyproject.toml; a file without the
table gives the defaults). Keys (dashes or underscores), every one optional:

    [tool.rexbench.gate]
    models = ["rexnet_x1.0", "py:nets/my.py:build"]  # gated when no MODEL is given
    baseline = "baselines"         # folder, relative to this pyproject.toml
    checks = ["latency.p90:+20%"]  # added to the defaults; same metric -> replaces the default
    strict = false                 # a baseline from other hardware fails the gate
    fail-on-inconclusive = false   # an inconclusive latency check fails the gate
    require-same-source = false    # a py: model whose source changed is refused (exit 2)
    alpha = 0.01                   # one-sided significance level of the latency rule
    max-load-per-core = 2.0        # busy machine: 1-min load > this x usable cores (inf: ignore)
    runs = 300                     # re-measure with this many runs (default: the baseline's)
    warmup = 20
    attempts = 3                   # measurements per model while the machine is contended

Command-line options win over the file: `--check` adds to (or replaces by metric) its checks,
`--baseline` replaces its folder, and the flags switch on what the file leaves off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rexbench.errors import RexbenchError

_TYPES: dict[str, tuple[type, ...]] = {
    "models": (list,),
    "baseline": (str,),
    "checks": (list,),
    "strict": (bool,),
    "fail-on-inconclusive": (bool,),
    "require-same-source": (bool,),
    "alpha": (float, int),
    "max-load-per-core": (float, int),
    "runs": (int,),
    "warmup": (int,),
    "attempts": (int,),
}


@dataclass(frozen=True)
class GateConfig:
    """The settings read from pyproject.toml (defaults when there is no file or no table)."""

    path: Path | None = None
    models: tuple[str, ...] = ()
    baseline: Path | None = None
    checks: tuple[str, ...] = ()
    strict: bool = False
    fail_on_inconclusive: bool = False
    require_same_source: bool = False
    alpha: float | None = None
    max_load_per_core: float | None = None
    runs: int | None = None
    warmup: int | None = None
    attempts: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def find_pyproject(start: str | Path | None = None) -> Path | None:
    """The nearest pyproject.toml in `start` (default: the working directory) or its parents."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _toml_loads(text: str, path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise RexbenchError(
                f"reading {path} needs Python 3.11+ or the tomli package (pip install tomli)"
            ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RexbenchError(f"{path}: not valid TOML ({exc}); fix the file") from None


def load_config(path: str | Path | None = None, start: str | Path | None = None) -> GateConfig:
    """Read `[tool.rexbench.gate]` from `path`, or from the pyproject.toml found from `start` up."""
    file = Path(path) if path is not None else find_pyproject(start)
    if file is None:
        return GateConfig()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise RexbenchError(f"cannot read {file}: {exc.strerror or exc}") from None
    table = _toml_loads(text, file).get("tool", {}).get("rexbench", {}).get("gate")
    if table is None:
        return GateConfig(path=file)
    where = f"{file} [tool.rexbench.gate]"
    if not isinstance(table, dict):
        raise RexbenchError(f"{where} must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("_", "-")
        if name not in _TYPES:
            raise RexbenchError(f"{where}: unknown key {key!r}; known: {', '.join(_TYPES)}")
        kinds = _TYPES[name]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            want = " or ".join(k.__name__ for k in kinds)
            raise RexbenchError(f"{where}: {key} must be {want}, got {value!r}")
        if kinds == (list,) and not all(isinstance(v, str) for v in value):
            raise RexbenchError(f"{where}: {key} must be a list of strings, got {value!r}")
        values[name] = value
    alpha = values.get("alpha")
    if alpha is not None and not 0 < alpha < 0.5:
        raise RexbenchError(f"{where}: alpha must be between 0 and 0.5, got {alpha!r}")
    margin = values.get("max-load-per-core")
    if margin is not None and not margin > 0:
        raise RexbenchError(
            f"{where}: max-load-per-core must be > 0 (inf to ignore the load), got {margin!r}"
        )
    for name in ("runs", "warmup", "attempts"):
        if name in values and values[name] < (0 if name == "warmup" else 1):
            raise RexbenchError(f"{where}: {name} must be a positive integer, got {values[name]!r}")
    if "checks" in values:
        from rexbench.gate.checks import parse_check

        for text in values["checks"]:
            try:
                parse_check(text)
            except RexbenchError as exc:
                raise RexbenchError(f"{where}: {exc}") from None
    baseline = values.get("baseline")
    return GateConfig(
        path=file,
        models=tuple(values.get("models", ())),
        baseline=(file.parent / baseline) if baseline else None,
        checks=tuple(values.get("checks", ())),
        strict=values.get("strict", False),
        fail_on_inconclusive=values.get("fail-on-inconclusive", False),
        require_same_source=values.get("require-same-source", False),
        alpha=float(alpha) if alpha is not None else None,
        max_load_per_core=float(margin) if margin is not None else None,
        runs=values.get("runs"),
        warmup=values.get("warmup"),
        attempts=values.get("attempts"),
        raw=dict(table),
    )
