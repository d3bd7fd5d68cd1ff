"""One worker process per configuration: the parent's side.

Configurations measured in one process disturb each other: ONNX Runtime's, OpenVINO's and
PyTorch's thread pools spin and compete for the cores between chunks, and they share one heap. So
by default every configuration of a model runs in a worker process of its own (pyperf's workers
and asv's per-benchmark processes are the model), started with its own environment: its thread
count and its allocator policy, set before the interpreter starts (rexbench.measure.machine.allocators).
The worker (rexbench.measure.run.worker) builds the model, prepares its configuration, checks its
output against the eager fp32 model's and then, on each command, times a chunk of calls and sends
the samples back over its pipe (rexbench.measure.run.channel); between commands it is blocked on
that pipe. The parent coordinates: it asks one worker at a time (or times the drift anchor, which
stays in the parent), in the small alternating chunks of rexbench.measure.timing.loop, so drift
still hits every configuration alike; it reads each worker's own contention counters around its
chunks (rexbench.measure.machine.processes) and writes the records as before, with `env.worker`.

A worker that crashes, is killed or hangs past `Isolation.timeout` (seconds of work per
configuration) becomes a `Fault` (rexbench.measure.run.faults): one line, and an invalid record
with the reason; the other configurations are measured all the same. Every worker is stopped
when its group of models is done, and at once on Ctrl-C.

`Isolation(in_process=True)` keeps every configuration in this process (--in-process: tests and
debugging); so does a run with test doubles (rexbench.measure.run.parts), which cannot be handed
to another process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.measure.machine import allocators, processes
from rexbench.measure.run import forked
from rexbench.measure.run.channel import Channel
from rexbench.measure.run.compile_cache import remove_left_since
from rexbench.measure.run.faults import Fault, ended, timed_out
from rexbench.measure.run.forked import Forked

if TYPE_CHECKING:
    from rexbench.measure.config import RunConfig
    from rexbench.records.schema import Record
    from rexbench.spec import ModelSpec

#: what a worker runs: rexbench.measure.run.worker's main, with this process's rexbench first on
#: the path (not the working directory, whose files could shadow a module)
BOOT = (
    "import sys; sys.path[0] = sys.argv[1]; "
    "from rexbench.measure.run.worker import main; raise SystemExit(main(sys.argv[2:]))"
)
STOP_GRACE_S = 5.0  # a worker whose pipe closed has this long to exit before it is killed


@dataclass(frozen=True)
class Isolation:
    """How configurations are kept apart. in_process: all in this process (--in-process);
    allocator: each worker's policy (rexbench.measure.machine.allocators); timeout: seconds of
    work a configuration may take: its worker's preparation (build, prepare, output check) and its
    timed chunks, once its interpreter is up (None: no limit)."""

    in_process: bool = False
    allocator: str = allocators.DEFAULT
    timeout: float | None = None

    def checked(self, in_process: bool = False) -> Isolation:
        """This isolation, refused with one line where it cannot be (an unknown allocator, one not
        installed, one that needs workers in-process, a timeout <= 0); in_process forces it."""
        allocators.check_policy(self.allocator)
        if self.timeout is not None and not self.timeout > 0:
            raise RexbenchError(f"--timeout {self.timeout:g}: give a number of seconds > 0")
        # a worker needs POSIX pipes and process groups: elsewhere, everything in this process
        isolation = replace(self, in_process=True) if in_process or os.name != "posix" else self
        if isolation.in_process and self.allocator != allocators.DEFAULT:
            raise RexbenchError(
                f"--allocator {self.allocator} is set up in each worker process before it starts; "
                "drop --in-process (this process keeps the steady policy)"
            )
        return isolation

    def describe(self) -> str:
        """ "steady allocator, a worker process per configuration": what a table's note says."""
        where = "all in one process" if self.in_process else "a worker process per configuration"
        return f"{self.allocator} allocator, {where}"


@dataclass
class Prepared:
    """What a worker reports of its prepared configuration: what a record keeps of a
    `PreparedModel` (its `to_dict()`, notes, BatchNorm left, compile time)."""

    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    bn_remaining: int = 0
    compile_s: float | None = None
    pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.info)

    def run(self) -> None:
        raise RuntimeError(f"this configuration runs in worker process {self.pid}")


class Worker:
    """One configuration's worker process: started at once, prepared by `setup`, then timed
    through `warmup` and `chunk` (rexbench.measure.timing.loop.Remote)."""

    def __init__(
        self, label: str, threads: int, isolation: Isolation, preload: Sequence[str] = ()
    ) -> None:
        env, self.env_set = allocators.worker_environment(isolation.allocator, threads)
        self.label, self.threads, self.isolation = label, threads, isolation
        # its stdout and stderr, quoted when it fails; closed by stop()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.oom_before = processes.oom_kills()
        self.born = time.time()  # its kernel libraries in torch.compile's cache are newer
        commands, replies = os.pipe(), os.pipe()
        try:
            self.process = _start(env, preload, (commands[0], replies[1]), self.log)
        except RexbenchError:
            for fd in (commands[1], replies[0]):
                os.close(fd)
            raise
        finally:  # the worker's ends: it has its own copies
            os.close(commands[0])
            os.close(replies[1])
        self.channel = Channel(replies[0], commands[1])
        self.spent = 0.0  # seconds of work so far, against isolation.timeout
        self.fault: Fault | None = None
        self.prepared = Prepared()  # its pid once it is up
        self.backend: dict[str, Any] = {}
        self.thread_info: dict[str, Any] = {}
        self.parity: dict[str, Any] = {}
        self.allocator: dict[str, Any] = {"policy": isolation.allocator}
        self.heap: dict[str, Any] | None = None
        self.recompiles: dict[str, int] | None = None
        self._compiled: dict[str, int] = {}  # torch.compile's counters at the last answer
        self.stopped = False
        self.idle = {  # waiting for threads to stop spinning, around its chunks (machine.processes)
            "limit_s": processes.IDLE_LIMIT_S,
            "chunks": 0,
            "waited_s": 0.0,  # its own threads, after its chunks
            "max_s": 0.0,
            "not_idle": 0,
            "parent_waited_s": 0.0,  # this process's (the drift anchor's), before its chunks
            "parent_not_idle": 0,
        }
        self.up = False  # its interpreter and imports are done (its first message came)

    # ---------------------------------------------------------------------------- requests

    def ask(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """Send one command and wait for its answer, within what is left of the timeout; None
        (and `fault` set) when the worker is gone, or was stopped for hanging."""
        if self.fault is not None or not self.started():
            return None
        timeout = self.isolation.timeout
        started = time.monotonic()
        try:
            self.channel.send(message)
            reply = self.channel.receive(None if timeout is None else timeout - self.spent)
        except TimeoutError:
            self._kill()
            self.fault = timed_out(timeout or 0)
            return None
        except (BrokenPipeError, ConnectionResetError):
            reply = None
        finally:
            self.spent += time.monotonic() - started
        if reply is None:
            self.fault = self._ended()
        return reply

    def started(self) -> bool:
        """Wait for the worker's first message (its interpreter and imports are up; not counted
        against the timeout, which is about the configuration's work); False when it died first."""
        if not self.up and self.fault is None:
            try:
                self.up = self.channel.receive() is not None
            except (ConnectionResetError, OSError):
                self.up = False
            if not self.up:
                self.fault = self._ended()
            else:
                self.prepared.pid = self.process.pid
        return self.up

    def setup(
        self, spec: ModelSpec, config: RunConfig, shape: tuple[int, ...], weights: Any
    ) -> str | None:
        """Have the worker build, prepare and check its configuration. Returns why it could not
        (a configuration that fails, as in this process); raises what stops the whole run (out
        of memory); a worker that died meanwhile leaves `fault` set."""
        reply = self.ask(
            {
                "op": "setup",
                "spec": str(spec),
                "config": config.to_dict(),
                "input_shape": list(shape),
                "threads": self.threads,
                "weights": None if weights is None else str(weights),
                "allocator": self.isolation.allocator,
            }
        )
        if reply is None:
            return None
        if not reply["ok"]:
            if reply.get("fatal"):
                raise RexbenchError(reply["error"])
            return str(reply["error"])
        self.prepared = Prepared(
            info=reply["prepared"],
            notes=list(reply["notes"]),
            bn_remaining=int(reply["bn_remaining"]),
            compile_s=reply["compile_s"],
            pid=self.process.pid,
        )
        self.backend, self.thread_info = reply["backend"], reply["threads"]
        self.parity, self.allocator = reply["parity"], reply["allocator"]
        if reply.get("graphs") is not None:  # compiled: counted from after its first call
            self._compiled = {k: int(reply.get(k) or 0) for k in ("graphs", "cudagraph_skips")}
            self.recompiles = {"warmup_graphs": 0, "timing_graphs": 0, "cudagraph_skips": 0}
        return None

    def warmup(self, n: int) -> tuple[list[int], int | None]:
        reply = self._timed({"op": "warmup", "n": n})
        if reply is None:
            return [], None
        self.heap = reply.get("heap")
        self._count_graphs(reply, "warmup")
        return list(reply["samples"]), reply["peak_memory"]

    def chunk(self, n: int, phase: str) -> list[int]:
        reply = self._timed({"op": "chunk", "n": n})
        if reply is None:
            return []
        self._count_graphs(reply, phase)
        return list(reply["samples"])

    def _timed(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """A timed command, once this process's threads are idle; the waits tallied (`idle`)."""
        waited, idle = processes.wait_idle()
        reply = self.ask(request)
        tally = self.idle
        tally["parent_waited_s"] += waited
        tally["parent_not_idle"] += not idle
        if reply is not None:
            tally["chunks"] += 1
            tally["waited_s"] += reply["idle_wait_s"]
            tally["max_s"] = max(tally["max_s"], reply["idle_wait_s"])
            tally["not_idle"] += not reply["idle"]
        return reply

    def counters(self) -> dict[str, int | None]:
        """The contention counters with this worker's threads and page faults as "ours"."""
        return processes.counters_of(self.process.pid)

    def _count_graphs(self, reply: dict[str, Any], phase: str) -> None:
        """Graphs torch.compile compiled in the worker since its first call, by phase (as
        rexbench.measure.backends.cudagraphs.CompileWatch counts them in this process)."""
        if self.recompiles is None or reply.get("graphs") is None:
            return
        now = {k: int(reply.get(k) or 0) for k in ("graphs", "cudagraph_skips")}
        grown = {k: max(0, now[k] - self._compiled.get(k, 0)) for k in now}
        self._compiled = now
        self.recompiles["warmup_graphs" if phase == "warmup" else "timing_graphs"] += grown[
            "graphs"
        ]
        self.recompiles["cudagraph_skips"] += grown["cudagraph_skips"]

    # ------------------------------------------------------------------------------ record

    def finish(self, record: Record) -> None:
        """What the worker adds to its record: its allocator (and heap before the warm-up), who it
        was (`env.worker`), its recompilations, and the fault that ended it, if one did."""
        allocator = dict(self.allocator)
        if self.heap is not None:
            allocator["heap_before_warmup"] = self.heap
        record.env["allocator"] = allocator
        record.env["worker"] = {
            "pid": self.process.pid,
            "allocator": self.isolation.allocator,
            "threads": self.threads,
            "env": dict(self.env_set),
            "idle": dict(self.idle),
        }
        if self.recompiles is not None and record.timing is not None:
            record.timing.validity["recompiles"] = dict(self.recompiles)
        if self.fault is not None:  # said once, by the run's failures (WorkerPool.faults)
            reason = f"the worker {self.fault.reason}"
            record.parity = {"valid": False, "reason": reason, "fault": self.fault.kind}

    # ------------------------------------------------------------------------------- stop

    def _ended(self) -> Fault:
        """The fault of a worker whose pipe closed: how it ended, with its log and the OOM count."""
        try:
            code = self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:  # its pipe closed but it lives on: stopped here
            self._kill()
            code = self.process.returncode
        now = processes.oom_kills()
        grew = None if now is None or self.oom_before is None else now > self.oom_before
        return ended(code, self._log_text(), grew)

    def _log_text(self) -> str:
        with contextlib.suppress(OSError):
            self.log.seek(0)
            return self.log.read()[-20_000:].decode(errors="replace")
        return ""

    def stop(self, at_once: bool = False) -> None:
        """End the worker: its work is done, so it is killed rather than left to Python's own exit
        (which, with torch.compile's compile workers to shut down, took 1.5 s a model on this
        project's 2-core machine); at_once (Ctrl-C, an error): it may have been interrupted in a
        compilation, whose empty kernel libraries are then removed."""
        if self.stopped:
            return
        self.stopped = True
        self._kill(interrupted=at_once)
        self.channel.close()
        self.log.close()

    def _kill(self, interrupted: bool = True) -> None:
        """Kill the worker and whatever it started (its own process group), and reap it. When it
        may have been `interrupted` at work, the empty kernel libraries a compilation killed
        meanwhile left in torch.compile's cache are removed (rexbench.measure.run.compile_cache)."""
        running = self.process.poll() is None
        if running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if running and interrupted:
            with contextlib.suppress(OSError):
                remove_left_since(self.born - 1.0)  # file times may be coarser


def _start(
    env: dict[str, str], preload: Sequence[str], fds: tuple[int, int], log: IO[bytes]
) -> subprocess.Popen[bytes] | Forked:
    """The worker's process on its two pipe ends: forked by the fork server of its environment
    (rexbench.measure.run.forked) where a block holds servers and this is Linux, else a new
    interpreter."""
    servers = forked.held()
    if servers is not None and sys.platform.startswith("linux"):
        return servers.start_worker(env, preload, fds, log)
    try:
        return subprocess.Popen(
            [sys.executable, "-c", BOOT, forked.package_root(), *map(str, fds)],
            pass_fds=fds,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # Ctrl-C reaches the parent only, which stops it
        )
    except OSError as exc:
        raise RexbenchError(f"could not start a worker process: {exc}") from exc


class WorkerPool:
    """The workers of one group of models; all stopped when the `with` block ends, at once when
    it ends by an exception (Ctrl-C). Starts nothing in-process (`active` False)."""

    def __init__(self, isolation: Isolation, preload: Sequence[str] = ()) -> None:
        self.isolation, self.preload = isolation, tuple(preload)
        self.workers: list[tuple[str, Worker]] = []

    @property
    def active(self) -> bool:
        return not self.isolation.in_process

    def start(self, spec: ModelSpec, label: str, threads: int) -> Worker:
        worker = Worker(label, threads, self.isolation, self.preload)
        self.workers.append((str(spec), worker))
        return worker

    def faults(self) -> list[tuple[str, str, str]]:
        """(model, configuration label, reason) of every worker that failed."""
        return [
            (spec, w.label, f"the worker {w.fault.reason}") for spec, w in self.workers if w.fault
        ]

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        for _, worker in self.workers:
            worker.stop(at_once=kind is not None)
