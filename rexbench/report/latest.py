"""One record per point of Figure 3 and per row of the report: the newest of each machine, model,
configuration, thread count and allocator. The older ones are not dropped in silence: `older_note`
names them under the figure and the tables.

Threads: the number the model ran with (`timing.backend`), else the one asked for (`--threads`), else
the machine's torch default; a record that asked for 2 threads and one that took the default of 2 are
one point. Allocator: the policy the timed loop ran under (`env["allocator"]`, written by
`rexbench.measure.machine.allocator`); records written before it was stored ran under the steady one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.records.schema import Record

OLD_RECORDS_ALLOCATOR = "steady"
_NAMED = 4  # older records named one by one in a note; the rest are counted


def threads(r: Record) -> int | None:
    """The number of threads the model ran with (None: not recorded anywhere)."""
    backend = r.timing.backend if r.timing is not None else {}
    default = (r.env.get("threads") or {}).get("torch_num_threads")
    for value in (backend.get("threads"), r.run.config.get("threads"), default):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def allocator(r: Record) -> str:
    """ "steady" or "default": the memory allocator policy of the timed loop."""
    return str((r.env.get("allocator") or {}).get("policy") or OLD_RECORDS_ALLOCATOR)


def _configuration(r: Record) -> str:
    """The config id with the thread count left out (threads are a key of their own)."""
    from rexbench.measure.config import RunConfig

    try:
        return RunConfig.from_dict({**r.run.config, "threads": None}).config_id
    except (RexbenchError, TypeError, ValueError):  # a config this version cannot rebuild
        return r.run.config_id


def point(r: Record) -> tuple[Any, ...]:
    """(machine, model, configuration, threads, allocator): records with equal points measured
    the same thing, and only the newest is shown."""
    return (r.machine_id, r.model.spec, _configuration(r), threads(r), allocator(r))


def latest(records: Iterable[Record]) -> tuple[list[Record], list[Record]]:
    """The newest record of each point, in the order the points first appear, and the older ones."""
    best: dict[tuple[Any, ...], Record] = {}
    older: list[Record] = []
    for r in records:
        key = point(r)
        kept = best.setdefault(key, r)
        if kept is not r:
            newer, old = (r, kept) if r.created > kept.created else (kept, r)
            best[key] = newer
            older.append(old)
    return list(best.values()), older


def varying(records: Sequence[Record]) -> set[str]:
    """Which of "threads" and "allocator" take more than one value among the records."""
    out = set()
    if len({threads(r) for r in records}) > 1:
        out.add("threads")
    if len({allocator(r) for r in records}) > 1:
        out.add("allocator")
    return out


def threads_text(n: int | None) -> str:
    return "threads unknown" if n is None else f"{n} thread" + ("" if n == 1 else "s")


def tags(r: Record, varies: set[str]) -> list[str]:
    """ "2 threads", "default allocator": what tells the record apart where those vary."""
    out = [threads_text(threads(r))] if "threads" in varies else []
    return out + ([f"{allocator(r)} allocator"] if "allocator" in varies else [])


def older_note(older: Sequence[Record]) -> str:
    """One sentence naming the older records (the first few; the others counted), or ""."""
    if not older:
        return ""
    named, shown = [], {"threads"} | varying(older)
    for r in sorted(older, key=lambda r: (r.model.spec, r.run.label, r.created))[:_NAMED]:
        what = ", ".join([r.run.label, *tags(r, shown)])
        named.append(f"{r.model.spec} {what} of {r.created[:16].replace('T', ' ')} UTC")
    more = f" and {len(older) - _NAMED} more" if len(older) > _NAMED else ""
    return (
        f"{len(older)} older record(s) not shown, each replaced by a newer one of the same model, "
        f"configuration, threads and allocator: {'; '.join(named)}{more}."
    )
