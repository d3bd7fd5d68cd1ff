"""Instructions of a Python statement under valgrind's callgrind, simulated only where counted.

A fresh interpreter runs under `valgrind --tool=callgrind` with instrumentation and collection off
(OPTIONS): Python's start-up, `import torch`, the setup and the warm-up run on valgrind's core
alone, several times faster than instrumented (`import torch`: 33 s against 154 s here, the
machine loaded). Then the process switches instrumentation on (`callgrind_control --instr=on`),
and around each repeat of `number` calls switches collection on and dumps it (torch's
`_valgrind_toggle` client requests, as torch.utils.benchmark's Timer.collect_callgrind does,
a garbage collection before each), then exits at once.
What is counted is the same: the instructions the calls execute. Each dump is read with
`callgrind_annotate`, per function, and denoised as torch.utils.benchmark does
(`FunctionCounts.denoise`: the interpreter's unicode dictionary lookups, which vary between
processes, are dropped).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

OPTIONS = ("--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no")
_SCRIPT = """
import gc, os, subprocess, sys
import torch
{setup}
for _ in range({number}):
    {stmt}
switched = subprocess.run(["callgrind_control", "--instr=on", str(os.getpid())],
                          capture_output=True, text=True)
if switched.returncode:
    sys.exit("callgrind_control --instr=on failed: " + switched.stdout + switched.stderr)
for _ in range({repeats}):
    gc.collect()
    torch._C._valgrind_toggle()
{calls}
    torch._C._valgrind_toggle_and_dump_stats()
os._exit(0)  # every count is dumped: skip the interpreter's clean-up, simulated it takes seconds
"""
_ROW = re.compile(r"^\s*([0-9,]+)\s+(.+:.+)$")  # torch's parser's: count, file:function
_TOTAL = re.compile(r"^([0-9,]+)\s+PROGRAM TOTALS", re.MULTILINE)


def script(setup: str, stmt: str, number: int, repeats: int) -> str:
    """The program valgrind runs: setup, `number` warm-up calls, then `repeats` counted blocks."""
    calls = "\n".join([f"    {stmt}"] * number)
    return _SCRIPT.format(setup=setup, stmt=stmt, number=number, repeats=repeats, calls=calls)


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def denoised(dump: Path) -> int:
    """The instructions of one dump, summed per function (exclusive) and denoised, as torch's
    parser does (a row equal to the program's total is a top-level symbol, not a function)."""
    from torch.utils.benchmark.utils.valgrind_wrapper.timer_interface import (
        FunctionCount,
        FunctionCounts,
    )

    cmd = ["callgrind_annotate", "--inclusive=no", "--threshold=100", "--show-percs=no", str(dump)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    total = _TOTAL.search(out)
    if total is None:
        raise OSError(f"callgrind_annotate found no PROGRAM TOTALS in {dump.name}")
    rows = (_ROW.match(line) for line in out.splitlines())
    counts = tuple(FunctionCount(_int(m[1]), m[2]) for m in rows if m and m[1] != total[1])
    return FunctionCounts(counts, inclusive=False).denoise().sum()


def collect(setup: str, stmt: str, *, number: int, repeats: int) -> list[int]:
    """Denoised instructions of each repeat of `number` calls of `stmt`, in a fresh process under
    callgrind (this interpreter, this working directory). OSError with valgrind's last words when
    the process fails."""
    with tempfile.TemporaryDirectory(prefix="rexbench-callgrind-") as tmp:
        program = Path(tmp, "count.py")
        program.write_text(script(setup, stmt, number, repeats))
        out = Path(tmp, "callgrind.out")
        cmd = ["valgrind", *OPTIONS, f"--callgrind-out-file={out}", sys.executable, str(program)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise OSError(f"valgrind exited {done.returncode}: {done.stdout}{done.stderr}")
        counts = [denoised(Path(f"{out}.{i}")) for i in range(1, repeats + 1)]
    if not all(counts):
        raise OSError(f"callgrind counted no instruction (per repeat: {counts})")
    return counts
