"""The graphs that engine backends build before their session or compilation (ONNX Runtime's
export and its int8 quantization, OpenVINO's converted and NNCF-quantized model), kept on disk for
a run that prepares one computation many times: `rexbench tune` prepares each configuration again
at every thread count, allocator and rung, each time in a new worker process, and on 2 cores an
int8 quantization takes 10-25 s of that. Off unless the environment variable ARTIFACTS_ENV names a
folder: `kept()` sets one for the workers of a block (tune's search and its deploy check) and
removes it afterwards; a user may set one of their own for profile and sweep.

An entry is keyed by everything the graph depends on: the backend and its options, the dtype, the
example input's shape, the calibration's normalisation, the model's class and the bytes of every
parameter and buffer, and the versions of torch and the runtime's packages. It holds the graph's
files and what the record keeps of the build (`info`, with the build's own times); a later
preparation that reuses it says so in its record (`artifact`). Entries are written to a temporary
folder and renamed into place, so a worker stopped while writing leaves none half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rexbench.errors import RexbenchError

ARTIFACTS_ENV = "REXBENCH_ARTIFACTS"
INFO = "info.json"


@dataclass(frozen=True)
class Entry:
    """One cached graph: its folder (the backend's files and INFO), and whether it was just built."""

    folder: Path
    info: dict[str, Any]
    reused: bool


def folder() -> Path | None:
    """The cache's folder, when one is set in the environment."""
    value = os.environ.get(ARTIFACTS_ENV)
    return Path(value) if value else None


@contextlib.contextmanager
def kept() -> Iterator[Path]:
    """A cache of built graphs for the workers started while the block runs (ARTIFACTS_ENV set in
    this process's environment, which they inherit), removed with its files afterwards; the
    folder already set, when there is one, is used and left as it is."""
    given = folder()
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="rexbench-graphs-") as path:
        os.environ[ARTIFACTS_ENV] = path
        try:
            yield Path(path)
        finally:
            os.environ.pop(ARTIFACTS_ENV, None)


def graph_key(module: Any, parts: Sequence[Any], packages: Sequence[str]) -> str:
    """A hex digest of the module (its class, every parameter's and buffer's name, dtype, shape
    and bytes), of `parts` (JSON-able: backend, options, dtype, input shape...) and of the
    installed versions of `packages`."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    digest = hashlib.sha256()
    versions = []
    for name in packages:
        try:
            versions.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} missing")
    head = [type(module).__module__, type(module).__qualname__, list(parts), versions]
    digest.update(json.dumps(head, default=str).encode())
    for name, tensor in (*module.named_parameters(), *module.named_buffers()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def cached(
    module: Any, parts: Sequence[Any], packages: Sequence[str], build: Callable[[Path], dict]
) -> Entry | None:
    """The graph of `module` with `parts` (JSON-able: backend, options, dtype, input shape...)
    from the cache: reused when present, else made by `build(folder)`, which writes the graph's
    files into `folder` and returns what the record keeps of it. None when no cache is set (the
    caller builds as usual)."""
    root = folder()
    if root is None:
        return None
    target = root / graph_key(module, parts, packages)
    if (target / INFO).is_file():
        return Entry(target, json.loads((target / INFO).read_text()), reused=True)
    try:
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    except OSError as exc:
        raise RexbenchError(
            f"{ARTIFACTS_ENV}={root}: cannot write built graphs there ({exc.strerror}); "
            f"point it at a writable folder or unset it"
        ) from None
    try:
        info = build(scratch)
        (scratch / INFO).write_text(json.dumps(info, default=str))
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    try:
        os.replace(scratch, target)
    except OSError:  # another process put it there meanwhile: theirs is the same graph
        shutil.rmtree(scratch, ignore_errors=True)
    return Entry(target, info, reused=False)


def with_note(entry: Entry, info: dict[str, Any]) -> dict[str, Any]:
    """`info` for the record, saying where the graph came from when it was reused (its build
    times, export_s, quantize_s ..., are then the build's in an earlier worker)."""
    if not entry.reused:
        return info
    return {**info, "artifact": f"reused from this run's cache of built graphs ({ARTIFACTS_ENV})"}
