"""Instructions per forward pass: a measure of code that neither load nor noise can move.

Valgrind's callgrind runs the program on a simulated CPU and counts the instructions it executes,
so the count depends on the code, the input and the instruction set torch's kernels dispatch to,
not on what else the machine does (seen here: the same count to 1e-4 with both cores busy).
`perf stat` would count on the real CPU, but virtual machines rarely expose the counters (this
project's machines answer "not supported"); callgrind works everywhere valgrind runs, at a cost
of minutes per count (every instruction is simulated, the interpreter's start-up included).

torch.utils.benchmark drives it (Timer.collect_callgrind): a fresh Python process under
`valgrind --tool=callgrind --collect-atstart=no`, the setup run, the statement warmed up, then
collection switched on only around `number` calls, `repeats` times. `denoise=True` drops the
interpreter's reference-counting instructions, which vary between processes. The model is built
in that process from its spec (and checkpoint), prepared as the configuration says at one thread
(threads are simulated one after another anyway), with the steady allocator the timing loop uses.

Counted for PyTorch configurations without torch.compile (compiling under valgrind would take
hours): eager, channels_last, BN folded; on the CPU only. What a record stores:
`counts["instructions"]` (per call, the smallest repeat) and `counts["instructions_method"]`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.config import RunConfig

NUMBER = 2  # calls per repeat
REPEATS = 2
TOOL = "callgrind"
_SETUP = """
from rexbench.measure.counting.instructions import subject
run = subject({spec!r}, {config!r}, {weights!r})
"""


def why_not(config: RunConfig) -> str | None:
    """Why this configuration's instructions are not counted, or None when they can be."""
    if not config.device.startswith("cpu"):
        return "instructions are counted on the CPU only"
    backend = BACKENDS.get(config.runtime)
    if not backend.countable:
        return f"--config {backend.name}: instructions are counted for PyTorch configurations"
    if config.compile:
        return "torch.compile under valgrind would take hours: count an eager configuration"
    return None


def check_available() -> None:
    """A one-line error when valgrind or callgrind_annotate is missing."""
    missing = [tool for tool in ("valgrind", "callgrind_annotate") if shutil.which(tool) is None]
    if missing:
        raise RexbenchError(
            f"counting instructions needs {' and '.join(missing)}: install valgrind "
            "(apt install valgrind, brew install valgrind on Intel macs)"
        )


def valgrind_version() -> str | None:
    try:
        out = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def subject(spec: str, config: dict[str, Any], weights: str | None) -> Callable[[], object]:
    """In the counting process: the prepared model's forward under inference mode, one thread."""
    import torch

    from rexbench.measure.backends.prepare import prepare
    from rexbench.measure.machine.allocator import steady_allocator
    from rexbench.models.factory import create_model

    torch.set_num_threads(1)
    steady_allocator()
    shape = config.get("input_shape")
    prepared = prepare(
        create_model(spec, weights=weights),
        RunConfig.from_dict(config),
        input_shape=tuple(shape) if shape else None,
    )

    def run() -> object:
        with torch.inference_mode():
            return prepared.run()

    return run


@contextlib.contextmanager
def _this_python_first() -> Iterator[None]:
    """torch's harness starts `python` from PATH and insists it is this interpreter: put this
    interpreter's folder first on PATH while it runs (a venv used without activating it)."""
    saved = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), saved])
    try:
        yield
    finally:
        os.environ["PATH"] = saved


def count_instructions(
    spec: str,
    config: RunConfig,
    *,
    weights: str | Path | None = None,
    number: int = NUMBER,
    repeats: int = REPEATS,
) -> dict[str, Any]:
    """Count one configuration's instructions per call; {"instructions": n, "instructions_method":
    {...}} to merge into a record's counts. RexbenchError when it cannot be counted."""
    from torch.utils.benchmark import Timer

    reason = why_not(config)
    if reason is not None:
        raise RexbenchError(reason)
    check_available()
    data = config.to_dict() | {"threads": 1}
    setup = _SETUP.format(
        spec=str(spec), config=data, weights=None if weights is None else str(weights)
    )
    start = time.perf_counter()
    try:
        with _this_python_first():
            stats = Timer("run()", setup=setup, num_threads=1).collect_callgrind(
                number=number, repeats=repeats, collect_baseline=False
            )
    except OSError as exc:
        detail = " ".join(str(exc).split())[-300:]
        raise RexbenchError(f"callgrind could not count {spec} ({config.label}): {detail}") from exc
    per_call = [stat.counts(denoise=True) / number for stat in stats]
    low = min(per_call)
    return {
        "instructions": round(low),
        "instructions_method": {
            "tool": TOOL,
            "valgrind": valgrind_version(),
            "per_call": [round(x) for x in per_call],
            "spread": (max(per_call) - low) / low if low else None,
            "number": number,
            "repeats": repeats,
            "threads": 1,
            "denoise": True,
            "config_id": config.config_id,
            "seconds": round(time.perf_counter() - start, 1),
        },
    }


def counts_or_reason(
    spec: str, config: RunConfig, weights: str | Path | None = None
) -> dict[str, Any]:
    """What a record's counts get: the instruction count, or `instructions_skipped` with why not."""
    reason = why_not(config)
    if reason is not None:
        return {"instructions_skipped": reason}
    return count_instructions(spec, config, weights=weights)
