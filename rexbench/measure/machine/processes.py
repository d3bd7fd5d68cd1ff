"""What the kernel says about a worker process, read by the parent that coordinates it.

* `counters_of(pid)`: the contention counters of rexbench.measure.machine.contention for a chunk that
  another process ran: the machine's (CPU pressure, steal) and that process's own - its threads'
  run-queue wait (`/proc/<pid>/task/*/schedstat`) and its minor page faults (`/proc/<pid>/stat`,
  field 10). The parent reads them right before it asks for a chunk and right after the answer,
  while the worker waits on its pipe, so a runtime's own threads are never mistaken for a neighbour.
* `wait_idle(tasks)`: wait, outside any timed region, until the threads of a process stop running.
  A thread pool's workers spin for a while after the work is done, waiting for more: PyTorch's
  OpenMP worker for 7-11 ms of CPU time after an eager call at 2 threads on this project's 2-core
  machine (libgomp's spin count; ONNX Runtime's, 36-44 ms, unless told to stop when a run returns).
  A worker waits so after each of its chunks, and the parent before a worker's chunk (the drift
  anchor runs PyTorch in the parent), so that no chunk shares the cores with the previous one's
  spinning threads.
* `oom_kills()`: how many processes the kernel's out-of-memory killer has killed in this
  process's memory cgroup (cgroup v2 `memory.events`, v1 `memory.oom_control`: `oom_kill N`), so
  that a worker killed by SIGKILL can be said to have run out of memory when that count grew.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rexbench.measure.machine import contention

PROC = Path("/proc")
SELF_TASKS = PROC / "self" / "task"
CGROUP_ROOT = Path("/sys/fs/cgroup")
IDLE_LIMIT_S = 0.1  # at most, per chunk: libgomp's spin ends after about 10 ms of CPU time
IDLE_POLL_S = 0.0005


def parse_minflt(text: str) -> int | None:
    """Minor faults from a /proc/<pid>/stat line: the 10th field, counted after the command name
    (which is in parentheses and may hold spaces)."""
    _, _, rest = text.rpartition(")")
    fields = rest.split()
    return int(fields[7]) if len(fields) > 7 and fields[7].isdigit() else None


def minor_faults_of(pid: int, proc: Path = PROC) -> int | None:
    try:
        return parse_minflt((proc / str(pid) / "stat").read_text())
    except OSError:
        return None


def counters_of(pid: int, proc: Path = PROC) -> dict[str, int | None]:
    """One reading of the contention counters, with `pid`'s threads and page faults as "ours"."""
    paths = contention.Paths(tasks=proc / str(pid) / "task")
    reading = contention.read_counters(paths)
    if reading.get("faults") is not None:
        reading["faults"] = minor_faults_of(pid, proc)
    return reading


def parse_state(text: str) -> str | None:
    """The state letter of a /proc/<pid>/task/<tid>/stat line (after the parenthesised name)."""
    _, paren, rest = text.rpartition(")")
    parts = rest.split()
    return parts[0] if paren and parts else None


def running_threads(tasks: Path = SELF_TASKS, exclude: int | None = None) -> int | None:
    """How many threads under `tasks` (a /proc/<pid>/task folder) are running or runnable (state
    R), not counting thread `exclude`; None when the folder cannot be read."""
    try:
        names = [task for task in tasks.iterdir() if task.name != str(exclude)]
    except OSError:
        return None
    count = 0
    for task in names:
        try:
            count += parse_state((task / "stat").read_text()) == "R"
        except OSError:  # the thread ended
            continue
    return count


def wait_idle(tasks: Path = SELF_TASKS, limit_s: float = IDLE_LIMIT_S) -> tuple[float, bool]:
    """Wait until no thread under `tasks` but the calling one runs, at most `limit_s`: (seconds
    waited, whether they went idle). Where /proc cannot be read it does not wait."""
    me = threading.get_native_id()
    start = time.perf_counter()
    while (busy := running_threads(tasks, me)) and time.perf_counter() - start < limit_s:
        time.sleep(IDLE_POLL_S)
    return time.perf_counter() - start, not busy


def parse_oom_kill(text: str) -> int | None:
    """The `oom_kill N` line of a memory.events or memory.oom_control file."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


def _memory_cgroup_files(proc: Path, root: Path) -> list[Path]:
    """This process's cgroup v2 memory.events and v1 memory.oom_control, from /proc/self/cgroup."""
    try:
        lines = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        where = path.lstrip("/")
        if controllers == "":
            out += [root / where / "memory.events", root / "unified" / where / "memory.events"]
        elif "memory" in controllers.split(","):
            out.append(root / "memory" / where / "memory.oom_control")
    return out


def oom_kills(proc: Path = PROC, root: Path = CGROUP_ROOT) -> int | None:
    """Processes the OOM killer has killed in this memory cgroup so far; None where no cgroup
    file says it."""
    for path in _memory_cgroup_files(proc, root):
        try:
            count = parse_oom_kill(path.read_text())
        except OSError:
            continue
        if count is not None:
            return count
    return None
