"""A sweep on the nodes of a Ray cluster, written here exactly as local sweeps write theirs.

1. Each chosen node says who it is (`remote.identify`: its machine id, REXBENCH_MACHINE_ID
   included). Nodes with the same machine id are the same hardware: they share that machine's
   sweep (each model is measured once, by whichever of them is free).
2. Per machine, `rexbench.measure.run.sweep.plan` finds the records already in `out` (resume by
   config_id, as locally; --force measures everything again).
3. Each node measures one model at a time, in the sweep's order: a task holding all the node's CPUs
   and GPUs (`Node.whole`), pinned to it, never retried elsewhere. It returns the records' JSON; they
   are written here, atomically, under out/<machine-id>/ as each model finishes.

A failing model fails alone; a node that dies loses the model it was measuring, and its machine's
remaining models stay unmeasured unless another node of that machine takes them (run the command
again to resume). Ctrl-C cancels the running tasks and keeps every record written.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from rexbench.errors import first_line
from rexbench.fleet import remote
from rexbench.fleet.cluster import Node, is_alive
from rexbench.measure.run.sweep import PlanItem, SweepResult, plan

if TYPE_CHECKING:
    from rexbench.measure.config import RunConfig
    from rexbench.measure.run.rounds import ProfileEvent
    from rexbench.records.schema import Record

IDENTIFY_TIMEOUT_S = 300.0
POLL_S = 0.5  # the driver's loop: progress polled at most twice a second


@dataclass
class NodeRun:
    """One node's part of a fleet sweep: who it is, what it did, why it stopped early."""

    node: Node
    info: dict[str, Any] = field(default_factory=dict)
    result: SweepResult = field(default_factory=SweepResult)
    planned: int = 0  # models this node's machine had to measure
    started: int = 0  # models this node started
    lost: str | None = None  # why the node stopped (dead, unusable); None: it ran to the end
    unmeasured: list[str] = field(default_factory=list)  # its machine's models nobody measured

    @property
    def machine_id(self) -> str:
        return str(self.info.get("machine_id", "?"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node.name,
            "node_id": self.node.node_id,
            "labels": dict(self.node.labels),
            "machine_id": self.machine_id,
            "rexbench": self.info.get("rexbench"),
            **self.result.to_dict(),
            "lost": self.lost,
            "unmeasured": self.unmeasured,
        }


@dataclass
class FleetResult:
    runs: list[NodeRun]
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return any(r.result.failed or r.lost or r.unmeasured for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [r.to_dict() for r in self.runs],
            "notes": self.notes,
            "interrupted": self.interrupted,
            "seconds": self.seconds,
        }


class Hooks:
    """What a fleet sweep tells its caller; every method is optional (the defaults do nothing)."""

    def planned(self, runs: Sequence[NodeRun]) -> None: ...
    def started(self, run: NodeRun, item: PlanItem) -> None: ...
    def event(self, run: NodeRun, event: ProfileEvent) -> None: ...
    def finished(self, run: NodeRun, item: PlanItem, error: str | None) -> None: ...


def identify(ray: ModuleType, nodes: Sequence[Node]) -> list[NodeRun]:
    """Every node's identity (a light task pinned to it); a node that cannot answer is lost."""
    task = ray.remote(remote.identify)
    refs = [(task.options(**n.pinned(), max_retries=0).remote(), NodeRun(n)) for n in nodes]
    for ref, run in refs:
        try:
            run.info = ray.get(ref, timeout=IDENTIFY_TIMEOUT_S)
        except Exception as exc:
            run.lost = f"could not start a task there: {_why(exc)}"
    return [run for _, run in refs]


def plan_machines(
    runs: Sequence[NodeRun],
    specs: Sequence[str],
    configs: Sequence[RunConfig],
    out: Path,
    force: bool,
) -> dict[str, list[PlanItem]]:
    """machine id -> its plan (`measure.sweep.plan` against out/<machine-id>/); sets each run's
    skipped records and planned count."""
    plans: dict[str, list[PlanItem]] = {}
    for run in runs:
        if run.lost is None and run.machine_id not in plans:
            plans[run.machine_id] = plan(
                specs, configs, out, force=force, machine_id=run.machine_id
            )
    for run in runs:
        items = plans.get(run.machine_id, [])
        first = next((r for r in runs if r.machine_id == run.machine_id and r.lost is None), None)
        if first is run:  # a machine's skipped records are counted once, on its first node
            run.result.skipped = [i for i in items if i.done]
        run.planned = sum(1 for i in items if i.todo)
    return plans


class _Driver:
    """Submits each node its machine's next model when it is free, and writes what comes back."""

    def __init__(self, ray: ModuleType, out: Path, options: dict[str, Any], hooks: Hooks) -> None:
        self.ray, self.out, self.options, self.hooks = ray, out, options, hooks
        self.task = ray.remote(remote.measure)
        self.todo: dict[str, deque[PlanItem]] = {}
        self.inflight: dict[Any, tuple[NodeRun, PlanItem]] = {}
        self.queue = _progress_queue(ray)
        self.by_key: dict[str, NodeRun] = {}

    def submit(self, run: NodeRun) -> None:
        pending = self.todo.get(run.machine_id)
        if run.lost is not None or not pending:
            return
        item = pending.popleft()
        key = run.node.node_id
        self.by_key[key] = run
        options = {**run.node.whole(), "max_retries": 0}
        ref = self.task.options(**options).remote(
            item.spec, item.todo, self.options, self.queue, key
        )
        self.inflight[ref] = (run, item)
        run.started += 1
        self.hooks.started(run, item)

    def loop(self) -> None:
        while self.inflight:
            ready, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=POLL_S)
            self.drain()
            for ref in ready:
                run, item = self.inflight.pop(ref)
                self.settle(run, item, ref)
                self.submit(run)
        self.drain()

    def drain(self) -> None:
        if self.queue is None:
            return
        try:
            waiting = self.queue.qsize()
            messages = self.queue.get_nowait_batch(waiting) if waiting else []
        except Exception:  # the queue's node is gone: no more progress, the sweep goes on
            self.queue = None
            return
        for key, event in messages:
            if key in self.by_key:
                self.hooks.event(self.by_key[key], event)

    def settle(self, run: NodeRun, item: PlanItem, ref: Any) -> None:
        from ray.exceptions import TaskUnschedulableError

        error, node_error = None, False
        try:
            answer = self.ray.get(ref)
        except TaskUnschedulableError:  # the node left before the model started: nothing lost
            run.lost = "the node left the cluster"
            self.todo[run.machine_id].appendleft(item)
            self.hooks.finished(run, item, None)
            return
        except Exception as exc:
            error = _why(exc)
            node_error = _node_lost(self.ray, exc, run.node)
            answer = {}
        if "error" in answer:
            error, node_error = answer["error"], bool(answer.get("node"))
        for text in answer.get("records", []):
            self.write(run, text)
        if error is not None:
            run.result.failed.append((item.spec, error))
            if node_error:
                run.lost = error
        self.hooks.finished(run, item, error)

    def write(self, run: NodeRun, text: str) -> None:
        from rexbench.records.schema import Record
        from rexbench.records.store import write_record

        record: Record = Record.from_json(text, source=f"node {run.node.name}")
        path = write_record(record, self.out)
        run.result.records.append(record)
        run.result.paths.append(path)

    def cancel(self) -> None:
        for ref in self.inflight:
            with contextlib.suppress(Exception):  # already finished or gone
                self.ray.cancel(ref, force=True)


def _progress_queue(ray: ModuleType) -> Any:
    """A Ray queue for progress messages, kept on the driver's node when it is in the cluster."""
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        here = ray.get_runtime_context().get_node_id()
        where = NodeAffinitySchedulingStrategy(here, soft=True)
        return Queue(actor_options={"num_cpus": 0, "scheduling_strategy": where})
    except Exception:  # progress is a convenience; the sweep runs without it
        return None


def _why(exc: BaseException) -> str:
    """One line for a failed task: the task's own exception where there is one."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, ModuleNotFoundError) and "rexbench" in str(cause):
        return "rexbench is not installed on this node (install the same version there)"
    shown = cause if isinstance(cause, BaseException) else exc
    return first_line(shown)


def _node_lost(ray: ModuleType, exc: BaseException, node: Node) -> bool:
    from ray.exceptions import NodeDiedError, RayTaskError

    if isinstance(exc, NodeDiedError):
        return True
    if isinstance(exc, RayTaskError) and isinstance(exc.cause, ModuleNotFoundError):
        return True
    return not is_alive(ray, node.node_id)


def run_fleet(
    ray: ModuleType,
    nodes: Sequence[Node],
    specs: Sequence[str],
    configs: Sequence[RunConfig],
    *,
    out: str | Path,
    force: bool = False,
    hooks: Hooks | None = None,
    **options: Any,
) -> FleetResult:
    """The sweep of `specs` x `configs` on `nodes` (connected `ray`), records written to `out`.
    options (runs, warmup, input_shape, ...) go to `rexbench.measure.run.profile.profile_models`."""
    from rexbench.records.store import check_writable, machine_dir

    out, hooks = Path(out), hooks or Hooks()
    start = time.monotonic()
    runs = identify(ray, nodes)
    plans = plan_machines(runs, specs, configs, out, force)
    for mid in plans:  # an unwritable --out fails now, not after the first model
        check_writable(machine_dir(out, mid))
    result = FleetResult(runs, notes=_notes(runs))
    hooks.planned(runs)
    driver = _Driver(ray, out, options, hooks)
    driver.todo = {mid: deque(i for i in items if i.todo) for mid, items in plans.items()}
    try:
        for run in runs:
            driver.submit(run)
        driver.loop()
    except KeyboardInterrupt:
        result.interrupted = True
    finally:  # Ctrl-C, or an error here: no task of this sweep goes on running
        driver.cancel()
    for run in runs:  # what a lost machine left undone, on its first node
        left = driver.todo.get(run.machine_id)
        if left and not result.interrupted:
            run.unmeasured = [i.spec for i in left]
            left.clear()
    result.seconds = time.monotonic() - start
    return result


def _notes(runs: Sequence[NodeRun]) -> list[str]:
    """Nodes that share a machine id, and nodes whose rexbench differs from this one's."""
    from rexbench import __version__

    notes, by_machine = [], {}
    for run in runs:
        if run.lost is None:
            by_machine.setdefault(run.machine_id, []).append(run.node.name)
    for mid, names in by_machine.items():
        if len(names) > 1:
            notes.append(
                f"{', '.join(names)} are the same hardware ({mid}): they share its sweep; set "
                "REXBENCH_MACHINE_ID on each to measure every one of them"
            )
    for run in runs:
        if run.lost is None and run.info.get("rexbench") != __version__:
            notes.append(
                f"{run.node.name} runs rexbench {run.info.get('rexbench')}, here {__version__}"
            )
    return notes


def preview(
    ray: ModuleType,
    nodes: Sequence[Node],
    specs: Sequence[str],
    configs: Sequence[RunConfig],
    *,
    out: str | Path,
    force: bool = False,
) -> list[dict[str, Any]]:
    """What run_fleet would do (a dry run), per machine: its nodes, the models to measure and those
    already measured. Nothing is measured."""
    runs = identify(ray, nodes)
    plans = plan_machines(runs, specs, configs, Path(out), force)
    return [
        {
            "machine_id": mid,
            "nodes": [r.node.name for r in runs if r.machine_id == mid and r.lost is None],
            "measure": [i.spec for i in items if i.todo],
            "skip": [i.spec for i in items if i.done and not i.todo],
        }
        for mid, items in plans.items()
    ] + [{"node": r.node.name, "lost": r.lost} for r in runs if r.lost is not None]
