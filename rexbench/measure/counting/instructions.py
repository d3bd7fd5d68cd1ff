"""Instructions per forward pass: a measure of code that neither load nor noise can move.

Valgrind's callgrind runs the program on a simulated CPU and counts the instructions it executes,
so the count depends on the code, the input and the instruction set torch's kernels dispatch to,
not on what else the machine does (seen here: the same count to 1e-4 with both cores busy).
`perf stat` would count on the real CPU, but virtual machines rarely expose the counters (this
project's machines answer "not supported"); callgrind works everywhere valgrind runs, at a cost
of a minute or more per count (every counted instruction is simulated; the rest of the process,
Python's start-up and `import torch` included, runs on valgrind's core, several times slower).

rexbench.measure.counting.callgrind drives it: a fresh Python process under valgrind's callgrind,
instrumented only after the setup and warm-up, collecting only around `number` calls, `repeats`
times, each count denoised as torch.utils.benchmark does (the interpreter's unicode dictionary
lookups, which vary between processes, are dropped). The model is built in that process from its
spec (and checkpoint), prepared as the configuration says at one thread (threads are simulated
one after another anyway), with the steady allocator the timing loop uses.

Counted for PyTorch configurations without torch.compile (compiling under valgrind would take
hours): eager, channels_last, BN folded; on the CPU only. What a record stores:
`counts["instructions"]` (per call, the smallest repeat) and `counts["instructions_method"]`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.config import RunConfig
from rexbench.measure.counting import callgrind

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
        totals = callgrind.collect(setup, "run()", number=number, repeats=repeats)
    except OSError as exc:
        detail = " ".join(str(exc).split())[-300:]
        raise RexbenchError(f"callgrind could not count {spec} ({config.label}): {detail}") from exc
    per_call = [total / number for total in totals]
    low = min(per_call)
    return {
        "instructions": round(low),
        "instructions_method": {
            "tool": TOOL,
            "valgrind": valgrind_version(),
            "valgrind_options": list(callgrind.OPTIONS),
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
