"""What runs on a node: who the node is, and the measurement of one model, in the node's own
environment and with its own default thread count, exactly as `rexbench sweep` run there would.

Ray adds to a task's environment: OMP_NUM_THREADS (the CPUs the task holds) when it was unset, and
CUDA_VISIBLE_DEVICES (the GPUs it holds). A measurement takes the whole node, so both only restate
the machine, but they would change torch's thread count and show up in the record's thread
environment. `node_environment` puts the thread variables back to what the worker process started
with (the environment `ray start` ran in, read from /proc/self/environ), then the thread count a
fresh `rexbench` process would use there is found in a fresh interpreter (once per worker) and set
explicitly; the record shows it.

Records travel back as their JSON text; the machine that ran the command writes them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    from rexbench.measure.config import RunConfig
    from rexbench.measure.run.rounds import ProfileEvent

#: Seconds between two progress messages while timing (phase changes are always sent).
PROGRESS_INTERVAL_S = 1.0


def identify() -> dict[str, Any]:
    """The node as a record will describe it: machine id, host name, software versions."""
    import platform
    import socket

    from rexbench import __version__
    from rexbench.measure.machine.env import machine_id
    from rexbench.records.schema import SCHEMA_VERSION

    return {
        "machine_id": machine_id(),
        "hostname": socket.gethostname(),
        "rexbench": __version__,
        "schema_version": SCHEMA_VERSION,
        "python": platform.python_version(),
    }


def startup_environ() -> dict[str, str] | None:
    """The environment this process started with (Linux), or None where it cannot be read."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.partition("=") for item in raw.decode(errors="replace").split("\0") if item)
    return {key: value for key, sep, value in pairs if sep}


def _assigned_cpus() -> str | None:
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # not in a Ray task
        return None
    return str(max(int(cpus), 1)) if cpus else None


def _restored(current: Mapping[str, str]) -> dict[str, str | None]:
    """Thread variables whose value differs from the process's start (None: unset there)."""
    from rexbench.measure.machine.env import THREAD_ENV_VARS

    start = startup_environ()
    if start is None:  # no /proc: drop only the OMP_NUM_THREADS that Ray sets to the CPUs held
        ray_value = _assigned_cpus()
        omp = current.get("OMP_NUM_THREADS")
        return {"OMP_NUM_THREADS": None} if omp is not None and omp == ray_value else {}
    return {k: start.get(k) for k in THREAD_ENV_VARS if current.get(k) != start.get(k)}


@contextlib.contextmanager
def node_environment() -> Iterator[None]:
    """The thread variables as the worker process started with them, for the block."""
    changes = _restored(os.environ)
    saved = {k: os.environ.get(k) for k in changes}
    _apply(changes)
    try:
        yield
    finally:
        _apply(saved)


def _apply(values: Mapping[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@functools.cache
def default_threads() -> int:
    """torch's intra-op thread count in a fresh interpreter with this environment: what `rexbench`
    started on this node would use."""
    code = "import torch; print(torch.get_num_threads())"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
        )
        return int(done.stdout.split()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        raise RexbenchError(f"could not read torch's default thread count here: {exc}") from None


class ProgressSender:
    """ProfileEvents to the driver through a Ray queue: every phase change, timing at most once per
    PROGRESS_INTERVAL_S. Best effort: a queue that is gone never fails the measurement."""

    def __init__(self, queue: Any, key: str) -> None:
        self.queue, self.key, self.last = queue, key, 0.0

    def __call__(self, event: ProfileEvent) -> None:
        now = time.monotonic()
        timing = event.phase in ("warmup", "timing")
        if self.queue is None or (timing and now - self.last < PROGRESS_INTERVAL_S):
            return
        self.last = now
        try:
            self.queue.put_nowait((self.key, event))
        except Exception:
            self.queue = None


def measure(
    spec: str,
    configs: Sequence[RunConfig],
    options: Mapping[str, Any],
    queue: Any = None,
    key: str = "",
) -> dict[str, Any]:
    """Profile one model under `configs` here; {"records": [JSON text, ...], "threads": n}, or
    {"error": one line, "node": bool} (node: this node cannot run any of them, e.g. no CUDA)."""
    import torch

    from rexbench.measure.backends.inputs import check_dtype, resolve_device
    from rexbench.measure.run.profile import profile_models

    with node_environment():
        try:
            for config in configs:
                check_dtype(resolve_device(config.device), config.dtype)
        except RexbenchError as exc:
            return {"error": str(exc), "node": True}
        threads = default_threads()
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            records = profile_models(
                [spec], configs, progress=ProgressSender(queue, key), **options
            )
        except RexbenchError as exc:
            return {"error": str(exc), "node": False}
        finally:
            torch.set_num_threads(previous)
    return {"records": [r.to_json() for r in records], "threads": threads}
