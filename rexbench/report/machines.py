"""What a hardware comparison compares: the records of each machine id, or, where the reference is
a folder whose machine id is also in another folder given, those folders one against the other (two
runs of one machine, such as your own `runs/` against the committed example)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from rexbench.errors import RexbenchError
from rexbench.records.schema import Record


def reference_folder(reference: str | None, given: Sequence[str]) -> str | None:
    """The name of the --reference folder as given among the folders (or as typed), or None when
    --reference names no file or folder (then it is a machine id or part of one)."""
    if reference is None or not Path(reference).exists():
        return None
    same = [p for p in given if Path(p).resolve() == Path(reference).resolve()]
    return same[0] if same else reference


def groups(
    records: Sequence[Record],
    reference: str | None,
    folders: Mapping[str, Sequence[Record]] | None = None,
) -> tuple[dict[str, list[Record]], str | None, str]:
    """(name -> records, the reference's name, a line on what was compared or "").

    Without `folders` (records per folder given, the --reference folder among them) or a reference
    folder, the records are grouped by machine id and `reference` is returned unchanged.
    """
    machines = Record.by_machine(records)
    if folders is None or reference not in folders:
        return machines, reference, ""
    ids = list(Record.by_machine(folders[reference]))
    if len(ids) != 1:
        found = ", ".join(ids) or "none"
        raise RexbenchError(
            f"--reference {reference}: a folder must hold the records of exactly one machine "
            f"(found {found})"
        )
    (mid,) = ids
    sharing = [name for name, recs in folders.items() if any(r.machine_id == mid for r in recs)]
    if len(sharing) < 2:
        return machines, mid, ""
    out: dict[str, list[Record]] = {}
    for name, recs in {mid: [], **machines}.items():
        if name != mid:
            out[name] = recs
            continue
        for folder in sharing:
            out[folder] = [r for r in folders[folder] if r.machine_id == mid]
    quoted = " and ".join(f"`{name}`" for name in sharing)
    line = (
        f"{quoted} hold records of one machine id, `{mid}`: compared folder by folder, "
        f"reference `{reference}`."
    )
    return out, reference, line
