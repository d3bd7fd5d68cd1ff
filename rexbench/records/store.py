"""Records on disk: runs/<machine-id>/ and baselines/<machine-id>/, one JSON file per model x config.

Layout (after pytest-benchmark's `<machine>/<NNNN>_<label>.json`):

    runs/amd-epyc-2c-16e4d4e5/rexnet_x1.0__eager__3fa2c1d0.json
    runs/amd-epyc-2c-16e4d4e5/timm_resnet50-7c3b9a1e__compiled__3fa2c1d0.json
    runs/amd-epyc-2c-16e4d4e5/rexnet_x1.0__eager__3fa2c1d0__2.json   a second record, the first kept
    baselines/counts.json          machine-independent counts: model -> {params, macs_conv, ...}

Writes are atomic (temporary file in the same folder, fsync, os.replace): Ctrl-C or a failing
serialisation leaves the previous file, or none, never a partial one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.records.schema import Record, dumps, loads, upgrade

COUNTS_FILE = "counts.json"
COUNTS_SCHEMA_VERSION = 1
_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def slug(text: str, limit: int = 80) -> str:
    """Filesystem-safe, readable form of `text`. When characters had to be replaced, or `text` is
    too long, a short hash of the original is appended so that distinct texts stay distinct."""
    safe = _UNSAFE.sub("_", text.lower()).strip("._-") or "x"
    if safe == text and len(safe) <= limit:
        return safe
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{safe[:limit]}-{digest}"


def record_filename(spec: str, label: str, config_id: str) -> str:
    """`<model>__<label>__<config_id>.json`: identical (spec, config) always give the same name."""
    return f"{slug(str(spec))}__{slug(label, 40)}__{slug(config_id, 40)}.json"


def machine_dir(root: str | Path, machine_id: str) -> Path:
    """The folder of one machine's records under a results/ or baselines/ root."""
    return Path(root) / slug(machine_id)


def record_path(root: str | Path, record: Record) -> Path:
    return machine_dir(root, record.machine_id) / record_filename(
        record.model.spec, record.run.label, record.run.config_id
    )


# -------------------------------------------------------------------------------------- writing


def check_writable(folder: Path, option: str = "--out") -> None:
    """Create `folder` and a file in it now, so that an unwritable output folder (given with
    `option`) fails before any measurement."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
        for made in created:  # leave no empty folder behind: the records create it again
            made.rmdir()
    except OSError as exc:
        raise RexbenchError(
            f"cannot write records to {folder}: {exc.strerror or exc}; choose a writable folder with {option}"
        ) from None


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` so that readers see the old file or the new one, never a mix.

    An unwritable folder raises RexbenchError; any exception (KeyboardInterrupt included) removes
    the temporary file and leaves `path` as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise RexbenchError(
            f"cannot write to {path.parent}: {exc.strerror or exc}; choose a writable folder"
        ) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise RexbenchError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    _fsync_dir(path.parent)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable where the platform allows opening a directory."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_record(record: Record, root: str | Path, *, replace: bool = True) -> Path:
    """Store `record` under root/<machine-id>/; returns the path. replace: the file of the same
    model x config is replaced; replace=False keeps every stored file and gives the record the
    first free name of `<model>__<label>__<config_id>__2.json`, `__3`, ... (readers take the
    newest record of a model x config: `find_record`, `Record.latest`).

    The JSON is built completely before anything touches the disk.
    """
    text = record.to_json()
    path = record_path(root, record)
    number = 1
    while not replace and path.exists():
        number += 1
        path = path.with_name(f"{record_path(root, record).stem}__{number}.json")
    return atomic_write_text(path, text)


# -------------------------------------------------------------------------------------- reading


class NotARecord(RexbenchError):
    """A JSON file that does not claim to be a rexbench record (no schema_version, no kind)."""


def claims_record(data: Any) -> bool:
    """Whether parsed JSON says it is a rexbench record: an object with a `schema_version` or a
    `kind` (other than the counts baseline's). Other JSON in a results folder (analyses, load
    logs) is not a record and not a damaged one either."""
    if not isinstance(data, dict) or data.get("kind") == "counts":
        return False
    return "schema_version" in data or "kind" in data


def load_record(path: str | Path, *, only_claimed: bool = False) -> Record:
    """One record file; RexbenchError (one line) when unreadable, damaged or of another schema.
    only_claimed: valid JSON that does not claim to be a record raises NotARecord."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RexbenchError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RexbenchError(f"{path}: not a text file; expected a rexbench JSON record") from None
    data = loads(text, str(path))
    if only_claimed and not claims_record(data):
        raise NotARecord(f"{path}: not a rexbench record")
    return Record.from_dict(data, str(path))


def _record_files(folder: Path) -> list[Path]:
    """JSON files below `folder`, sorted; skips temporary/hidden files and the counts baseline."""
    return sorted(
        p
        for p in folder.rglob("*.json")
        if p.name != COUNTS_FILE
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def load_records(
    paths: Iterable[str | Path] | str | Path,
    *,
    skip_bad: bool = False,
    on_skip: Callable[[str], None] | None = None,
) -> list[Record]:
    """Records from files and folders (folders searched recursively), each file once, in order.

    In a folder, JSON that does not claim to be a record is passed over without a word; a file
    named on its own must be a record. A bad record raises RexbenchError naming it; with
    skip_bad=True it is reported through `on_skip` (default: `warnings.warn`) and skipped instead.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[tuple[Path, bool]] = []  # (file, found in a folder)
    for given in paths:
        p = Path(given)
        if p.is_dir():
            files += [(f, True) for f in _record_files(p)]
        elif p.exists():
            files.append((p, False))
        else:
            raise RexbenchError(f"no such file or folder: {p}")
    seen: set[Path] = set()
    records = []
    for f, in_folder in files:
        if f.resolve() in seen:
            continue
        seen.add(f.resolve())
        try:
            records.append(load_record(f, only_claimed=in_folder))
        except NotARecord:
            continue
        except RexbenchError as exc:
            if not skip_bad:
                raise
            (on_skip or _warn)(f"skipped {exc}")
    return records


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def find_record(root: str | Path, spec: Any, config_id: str, machine_id: str) -> Record | None:
    """The stored record of `spec` (ModelSpec or canonical string) with `config_id` on the machine
    `machine_id` (the caller's `rexbench.measure.machine.env.machine_id()`), the newest where there are
    several (`write_record(replace=False)`), or None. Used by resumable sweeps; a damaged match
    raises."""
    folder = machine_dir(root, machine_id)
    stem = f"{slug(str(spec))}__*__{slug(config_id, 40)}"
    paths = sorted({*folder.glob(f"{stem}.json"), *folder.glob(f"{stem}__*.json")})
    records = [load_record(path) for path in paths]
    found = [r for r in records if r.key == (str(spec), config_id)]
    return max(found, key=lambda r: r.created) if found else None


# ------------------------------------------------------------------------------ counts baseline


def counts_path(path: str | Path) -> Path:
    """`baselines/` -> `baselines/counts.json`; a path ending in .json is used as it is."""
    path = Path(path)
    return path if path.suffix == ".json" else path / COUNTS_FILE


def read_counts(path: str | Path, missing_ok: bool = False) -> dict[str, dict[str, Any]]:
    """The machine-independent counts baseline: {canonical spec: {counter: value}}."""
    path = counts_path(path)
    if not path.exists():
        if missing_ok:
            return {}
        raise RexbenchError(
            f"no counts baseline at {path}: create it with `rexbench baseline save MODEL...`"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RexbenchError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _damaged_counts(path, "not a text file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _damaged_counts(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    data = upgrade(data, str(path), COUNTS_SCHEMA_VERSION, migrations={})
    if data.get("kind") != "counts" or not isinstance(data.get("models"), dict):
        raise RexbenchError(f"{path}: not a rexbench counts baseline (expected kind 'counts')")
    bad = [k for k, v in data["models"].items() if not isinstance(v, dict)]
    if bad:
        raise _damaged_counts(path, f"the counts of {bad[0]!r} are not an object")
    return data["models"]


def _damaged_counts(path: Path, what: str) -> RexbenchError:
    """A damaged counts baseline: the advice keeps every model's counts (deleting the file, or
    letting a save overwrite it, would drop all the models it does not name)."""
    return RexbenchError(
        f"{path} is damaged: {what}; nothing was written. Restore it from version control "
        f"(git checkout -- {path}) or repair it by hand, then run the command again; to rebuild "
        "it from scratch, move it aside and run `rexbench baseline save --counts-only --all`"
    )


def write_counts(
    path: str | Path, counts: Mapping[str, Mapping[str, Any]], merge: bool = True
) -> Path:
    """Write the counts baseline atomically, models sorted; merge=True keeps models not given."""
    path = counts_path(path)
    models = read_counts(path, missing_ok=True) if merge else {}
    models.update({str(k): dict(v) for k, v in counts.items()})
    from rexbench import __version__

    data = {
        "schema_version": COUNTS_SCHEMA_VERSION,
        "kind": "counts",
        "rexbench_version": __version__,
        "models": dict(sorted(models.items())),
    }
    return atomic_write_text(path, dumps(data))
