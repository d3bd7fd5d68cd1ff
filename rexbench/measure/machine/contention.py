"""Contention measured, not guessed: what the kernel says about every timing chunk of a run.

Before and after every chunk (a runner's warm-up, or its `round_size` calls of one round; always
outside the timed region) `read_counters` takes these cumulative counters:

* CPU pressure stall information, `/proc/pressure/cpu` (Linux 4.20+): `some total=` is the time, in
  microseconds, during which at least one runnable task on the machine waited for a CPU.
* steal time, `/proc/stat` (the `cpu` line, 8th value, in clock ticks): time the hypervisor ran
  something else on our virtual CPUs.
* our own run-queue wait and CPU time, `/proc/self/task/*/schedstat` (2nd and 1st value, ns): time
  this process's threads were runnable but not running, and time they ran.
* the machine's idle time, `/proc/stat` (the `cpu` line's idle + iowait, clock ticks) and its
  number of CPUs: with our CPU time, what every other process (and the hypervisor) had of the CPUs.
* minor page faults of the process (`getrusage`): not contention, but the other thing that makes a
  call slower than its arithmetic (rexbench.measure.machine.allocator); reported per call.

All threads of this process are ours (PyTorch's OpenMP workers, ONNX Runtime's and OpenVINO's
pools); a neighbour is another process. Our threads can wait for each other too (one pool still
spinning when another starts), and PSI counts that as well; so our wait and PSI count only as far as
other processes ran in the chunk (`Chunk.others_ns`). A chunk is *contended* when that wait
exceeded CHUNK_WAIT_SHARE of it, or steal CHUNK_STEAL_SHARE, or that PSI "some" CHUNK_PSI_SHARE.
A run is contended when more than RUN_CONTENDED of its model chunks (timed chunks of the measured
configurations, not the anchor's, not warm-up) are: then the anchor's samples are contended alike,
and a 2-thread model's barriers wait out other processes' time slices in a way the anchor cannot
cancel (see docs/gate.md, Contention). `ChunkSampler` can stop a run as soon as it is certain to end
contended (`abort_when_contended`), so a gate wastes no time finishing it.

Each counter that cannot be read (no such file: macOS, older kernels, some containers) is None and
the record's `sources` says which were read; with none of them the run is "not measured", never
"clean". Without the idle time or our CPU time (records of version 1 too) our wait and PSI count
whole. Parsers take the files' text, so they are tested on synthetic contents.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.measure.machine.allocator import minor_faults
from rexbench.measure.machine.placement import signature

VERSION = 2  # 2: our threads' CPU time, the machine's idle time and CPUs (`Chunk.others`)
PSI_FILE = Path("/proc/pressure/cpu")
STAT_FILE = Path("/proc/stat")
TASKS_DIR = Path("/proc/self/task")
CHUNK_WAIT_SHARE = 0.05
CHUNK_STEAL_SHARE = 0.05
CHUNK_PSI_SHARE = 0.10
RUN_CONTENDED = 0.10
#: /proc/stat counts in clock ticks of 1/100 s (USER_HZ): what `Chunk.others` cannot resolve
STAT_RESOLUTION_NS = 10_000_000
MACHINE_COUNTERS = ("psi_some_us", "psi_full_us", "steal_ticks", "total_ticks", "idle_ns")
OWN_COUNTERS = ("wait_ns", "run_ns", "faults")  # this process's threads
COUNTERS = MACHINE_COUNTERS + OWN_COUNTERS


# ------------------------------------------------------------------------------------- parsers


def parse_psi(text: str) -> tuple[int | None, int | None]:
    """(some total, full total) in microseconds from a /proc/pressure/* file's text."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        kind, _, rest = line.strip().partition(" ")
        for item in rest.split():
            key, _, value = item.partition("=")
            if key == "total" and value.isdigit():
                out[kind] = int(value)
    return out.get("some"), out.get("full")


def parse_stat(text: str) -> tuple[int | None, int | None]:
    """(steal, total) clock ticks over all CPUs from /proc/stat's aggregate `cpu` line."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            values = [int(v) for v in parts[1:] if v.isdigit()]
            # user nice system idle iowait irq softirq steal [guest guest_nice]: guests are
            # already inside user and nice, so they are not added again
            total = sum(values[:8])
            return (values[7] if len(values) > 7 else None), total
    return None, None


def parse_stat_idle(text: str) -> tuple[int | None, int | None]:
    """(idle + iowait clock ticks over all CPUs, number of CPUs) from /proc/stat's text."""
    idle, cpus = None, 0
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu" and len(parts) > 5:
            idle = int(parts[4]) + int(parts[5])
        elif parts and parts[0].startswith("cpu") and parts[0][3:].isdigit():
            cpus += 1
    return idle, (cpus or None)


def parse_schedstat(text: str, field: int = 1) -> int | None:
    """Run-queue wait (ns; field 0: CPU time) from one /proc/<pid>/task/<tid>/schedstat:
    `oncpu_ns wait_ns slices`."""
    parts = text.split()
    return int(parts[field]) if len(parts) > field and parts[field].isdigit() else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def own_schedstat(tasks: Path = TASKS_DIR) -> tuple[int | None, int | None, int | None]:
    """(run-queue wait, CPU time, number of threads) of all threads of this process, whatever
    started them; a thread that ended takes its share along."""
    try:
        names = os.listdir(tasks)
    except OSError:
        return None, None, None
    texts = [_read(tasks / name / "schedstat") or "" for name in names]
    sums = []
    for index in (1, 0):
        known = [v for v in (parse_schedstat(t, index) for t in texts) if v is not None]
        sums.append(sum(known) if known else None)
    return sums[0], sums[1], len(names)


@dataclass(frozen=True)
class Paths:
    """Where the counters are read (tests point these at synthetic files)."""

    psi: Path = PSI_FILE
    stat: Path = STAT_FILE
    tasks: Path = TASKS_DIR


def read_counters(paths: Paths = Paths()) -> dict[str, int | None]:
    """One reading of every cumulative counter (None: not available here)."""
    psi = _read(paths.psi)
    stat = _read(paths.stat)
    some, full = parse_psi(psi) if psi else (None, None)
    steal, total = parse_stat(stat) if stat else (None, None)
    idle, cpus = parse_stat_idle(stat) if stat else (None, None)
    wait, run, threads = own_schedstat(paths.tasks)
    return {
        "psi_some_us": some,
        "psi_full_us": full,
        "steal_ticks": steal,
        "total_ticks": total,
        "wait_ns": wait,
        "faults": minor_faults(),
        "run_ns": run,
        "idle_ns": None if idle is None else idle * 1_000_000_000 // os.sysconf("SC_CLK_TCK"),
        "cpus": cpus,
        "threads": threads,
    }


# -------------------------------------------------------------------------------------- chunks


def _delta(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else max(0, b - a)


@dataclass(frozen=True)
class Chunk:
    """One chunk's counter differences; shares are of the chunk's wall time."""

    runner: int
    phase: str
    calls: int
    wall_ns: int
    psi_some_us: int | None = None
    psi_full_us: int | None = None
    steal_ticks: int | None = None
    total_ticks: int | None = None
    wait_ns: int | None = None
    faults: int | None = None
    run_ns: int | None = None
    idle_ns: int | None = None
    cpus: int | None = None  # the machine's, at the end of the chunk (not a difference)

    @property
    def others_ns(self) -> int | None:
        """CPU time other processes (and the hypervisor) had during the chunk: the CPUs' time
        less their idle time, less our threads' CPU time, less /proc/stat's resolution; None
        when a part is unknown."""
        if self.cpus is None or self.idle_ns is None or self.run_ns is None:
            return None
        busy = self.cpus * self.wall_ns - self.idle_ns - self.run_ns - STAT_RESOLUTION_NS
        return max(0, busy)

    @property
    def shares(self) -> dict[str, float | None]:
        wall = max(self.wall_ns, 1)
        steal = None
        if self.steal_ticks is not None and self.total_ticks:
            steal = self.steal_ticks / self.total_ticks
        others = self.others_ns
        return {
            "psi": None if self.psi_some_us is None else self.psi_some_us * 1000 / wall,
            "steal": steal,
            "wait": None if self.wait_ns is None else self.wait_ns / wall,
            "others": None if others is None else others / wall,
        }

    @property
    def contended(self) -> bool:
        """Our wait or PSI as far as other processes ran (whole when that is unknown), or steal,
        above its limit."""
        s = self.shares
        cap = s["others"] if s["others"] is not None else math.inf
        return (
            min(s["wait"] or 0, cap) > CHUNK_WAIT_SHARE
            or (s["steal"] or 0) > CHUNK_STEAL_SHARE
            or min(s["psi"] or 0, cap) > CHUNK_PSI_SHARE
        )


class ContendedRun(RexbenchError):
    """A run stopped early because it was certain to end contended (see ChunkSampler)."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__(f"machine contended ({describe(summary)})")
        self.summary = summary


Reader = Callable[[], dict[str, int | None]]


@dataclass
class ChunkSampler:
    """Readings around every chunk of one interleaved measurement.

    `start(runner)` is called right before a chunk (after the runner's setup), `end(phase, done)`
    right after it with the runner's cumulative call count of that phase. model_runners: the
    indices of the measured configurations (the anchor is not one); chunks_per_runner: timed
    chunks each of them will have. abort_when_contended: raise ContendedRun as soon as more than
    RUN_CONTENDED of the model chunks are certain to be contended. readers: a runner's own reader
    where its calls run in another process (a worker: its threads' wait, its page faults).
    """

    runners: Sequence[str]
    model_runners: Sequence[int]
    chunks_per_runner: int
    abort_when_contended: bool = False
    reader: Reader | None = None  # default: read_counters (looked up when called)
    readers: dict[int, Reader] = field(default_factory=dict)
    chunks: list[Chunk] = field(default_factory=list)
    threads_max: int | None = None  # most threads this process had at any reading
    placement: dict[str, Any] | None = None  # rexbench.measure.machine.placement's readings
    _open: tuple[int, int, dict[str, int | None]] | None = None
    _done: dict[tuple[int, str], int] = field(default_factory=dict)

    def start(self, runner: int) -> None:
        before = self._read(runner)  # then the clock: the wall time spans what the counters cover
        self._open = (runner, time.perf_counter_ns(), before)
        self._threads(before)

    def end(self, phase: str, done: int) -> None:
        if self._open is None:
            return
        runner, t0, before = self._open
        wall, after = time.perf_counter_ns() - t0, self._read(runner)
        self._open = None
        self._threads(after)
        calls = done - self._done.get((runner, phase), 0)
        self._done[(runner, phase)] = done
        diffs = {k: _delta(before.get(k), after.get(k)) for k in COUNTERS}
        self.chunks.append(Chunk(runner, phase, calls, wall, **diffs, cpus=after.get("cpus")))
        if self.abort_when_contended and phase == "timing" and self._doomed():
            raise ContendedRun(summarize(self.to_dict()))

    def _threads(self, reading: dict[str, int | None]) -> None:
        n = reading.get("threads")
        if n is not None:
            self.threads_max = max(n, self.threads_max or 0)

    def _read(self, runner: int) -> dict[str, int | None]:
        return (self.readers.get(runner) or self.reader or read_counters)()

    def _doomed(self) -> bool:
        bad = sum(c.contended for c in self._model_chunks())
        total = self.chunks_per_runner * len(self.model_runners)
        return bad > RUN_CONTENDED * total

    def _model_chunks(self) -> list[Chunk]:
        models = set(self.model_runners)
        return [c for c in self.chunks if c.phase == "timing" and c.runner in models]

    def to_dict(self) -> dict[str, Any]:
        """What a record stores (`Timing.contention`): sources, limits and one column per field."""
        columns = ("runner", "phase", "calls", "wall_ns", *COUNTERS, "cpus")
        first = self.chunks[0] if self.chunks else None
        return {
            "version": VERSION,
            "runners": list(self.runners),
            "threads_max": self.threads_max,
            "model_runners": list(self.model_runners),
            "sources": {
                "psi": first is not None and first.psi_some_us is not None,
                "steal": first is not None and first.steal_ticks is not None,
                "wait": first is not None and first.wait_ns is not None,
                "others": first is not None and first.others_ns is not None,
            },
            "limits": {
                "chunk_wait_share": CHUNK_WAIT_SHARE,
                "chunk_steal_share": CHUNK_STEAL_SHARE,
                "chunk_psi_share": CHUNK_PSI_SHARE,
                "run_contended": RUN_CONTENDED,
            },
            "chunks": {name: [getattr(c, name) for c in self.chunks] for name in columns},
            "placement": self.placement,
        }


# ------------------------------------------------------------------------------------- summary


def chunks_of(data: dict[str, Any]) -> list[Chunk]:
    """The chunks of a stored `Timing.contention` dict (missing columns read as None)."""
    columns = data.get("chunks") or {}
    n = len(columns.get("wall_ns") or [])
    names = ("runner", "phase", "calls", "wall_ns", *COUNTERS, "cpus")
    get = {k: (columns.get(k) or [None] * n) for k in names}
    return [Chunk(**{k: get[k][i] for k in names}) for i in range(n)]


def _share(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def summarize(data: dict[str, Any] | None) -> dict[str, Any]:
    """The run's contention: share of model chunks contended, PSI / steal / wait shares over the
    model's timed chunks, faults per call, and whether the run counts as contended.

    measured is False when no counter could be read (or the record has no contention data):
    then `contended` is None, never False.
    """
    if not data or not (data.get("chunks") or {}).get("wall_ns"):
        return {"measured": False, "contended": None}
    models = set(data.get("model_runners") or [])
    chunks = [c for c in chunks_of(data) if c.phase == "timing" and c.runner in models]
    sources = data.get("sources") or {}
    if not chunks or not any(sources.values()):
        return {"measured": False, "contended": None, "sources": sources}
    wall = sum(c.wall_ns for c in chunks)
    calls = sum(c.calls for c in chunks)
    bad = sum(c.contended for c in chunks)
    out: dict[str, Any] = {
        "measured": True,
        "sources": sources,
        "chunks": len(chunks),
        "contended_chunks": bad,
        "contended_fraction": bad / len(chunks),
        "psi_some_share": _sum_share(chunks, "psi_some_us", 1000, wall),
        "wait_share": _sum_share(chunks, "wait_ns", 1, wall),
        "others_share": _sum_share(chunks, "others_ns", 1, wall),
        "steal_share": _steal_share(chunks),
        "faults_per_call": _sum_share(chunks, "faults", 1, calls),
        "threads_max": data.get("threads_max"),
        "placement_signature": signature(data.get("placement")),
    }
    out["contended"] = out["contended_fraction"] > RUN_CONTENDED
    return out


def _sum_share(chunks: list[Chunk], name: str, scale: float, denominator: float) -> float | None:
    values = [getattr(c, name) for c in chunks]
    if any(v is None for v in values):
        return None
    return _share(sum(values) * scale, denominator)


def _steal_share(chunks: list[Chunk]) -> float | None:
    if any(c.steal_ticks is None or c.total_ticks is None for c in chunks):
        return None
    return _share(sum(c.steal_ticks for c in chunks), sum(c.total_ticks for c in chunks))


def describe(summary: dict[str, Any]) -> str:
    """One line: "62% of the model's chunks contended; PSI some 71%, our threads waited 55%, ..."."""
    if not summary.get("measured"):
        return "contention not measured (no /proc/pressure/cpu, /proc/stat or schedstat here)"
    parts = [f"{summary['contended_fraction']:.0%} of the model's chunks contended"]
    for key, label in (
        ("psi_some_share", "CPU pressure (PSI some)"),
        ("wait_share", "our threads waited"),
        ("others_share", "other processes ran"),
        ("steal_share", "steal"),
    ):
        value = summary.get(key)
        if value is not None and not math.isnan(value):
            parts.append(f"{label} {value:.0%}")
    return "; ".join(parts)
