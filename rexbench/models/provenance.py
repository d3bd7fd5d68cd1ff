"""What a record needs to rebuild a model: spec, builder or library version, and for `py:` code a source hash.

Records of external models carry the spec, its kwargs, the library version and, for `py:`
specs, the sha256 of the source file's bytes, which a gate compares (`source_hash`). Only the file that
holds the factory is hashed: edits to modules it imports are not seen. Pure apart from reading files and
package metadata: neither torch nor timm nor torchvision is imported.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.models.external import install_hint
from rexbench.models.packaged import package_version, packaged, resolve_weights
from rexbench.spec import ModelSpec, py_target, resolve_py_file, timm_name_tag


def provenance(spec: ModelSpec) -> dict[str, Any]:
    """A JSON-ready description of where a model comes from, for records and baselines.

    Always: spec (canonical string), source, kwargs. zoo: library "rexbench", version, builder,
    builder_kwargs, reference. timm: library, version, model, tag (None without one). torchvision:
    library, version, model. py: module (None for a file), file (absolute path or None), sha256, factory.
    """
    info: dict[str, Any] = {"spec": str(spec), "source": spec.source, "kwargs": spec.kwargs_dict}
    if spec.source == "zoo":
        from rexbench import __version__
        from rexbench.registry import MODELS

        entry = MODELS.get(spec.name)
        info.update(
            library="rexbench",
            version=__version__,
            builder=entry.builder,
            builder_kwargs=dict(entry.kwargs),
            reference=entry.reference,
        )
    elif spec.source == "timm":
        arch, tag = timm_name_tag(spec)
        info.update(library="timm", version=library_version("timm"), model=arch, tag=tag)
    elif spec.source == "torchvision":
        info.update(library="torchvision", version=library_version("torchvision"), model=spec.name)
    elif spec.source == "py":
        target, factory, is_file = py_target(spec)
        path = source_file(spec)
        info.update(
            module=None if is_file else target,
            file=None if path is None else str(path),
            sha256=None if path is None else _sha256(path),
            factory=factory,
        )
    else:
        raise RexbenchError(f"{spec}: unknown model source {spec.source!r}")
    return info


def source_hash(spec: ModelSpec) -> str | None:
    """sha256 (hex) of a `py:` spec's source file as it is now; None for other sources or no file."""
    if spec.source != "py":
        return None
    path = source_file(spec)
    return None if path is None else _sha256(path)


def source_file(spec: ModelSpec) -> Path | None:
    """The file holding a `py:` spec's factory: the .py path, or the module's file (found, not run).

    None for non-`py:` specs and for modules without a source file (built-in, namespace packages).
    Finding a dotted module imports its parent packages, as Python's import system does.
    """
    if spec.source != "py":
        return None
    target, _, is_file = py_target(spec)
    if is_file:
        path = resolve_py_file(target)
        if not path.is_file():
            raise RexbenchError(f"{spec}: file {target} not found (looked for {path})")
        return path
    try:
        found = importlib.util.find_spec(target)
    except (ImportError, ValueError) as exc:
        raise RexbenchError(f"{spec}: cannot find module {target}: {exc}") from None
    if found is None:
        raise RexbenchError(
            f"{spec}: no module named {target!r}; install it or add its folder to PYTHONPATH"
        )
    if not found.has_location or found.origin is None or not Path(found.origin).is_file():
        return None
    return Path(found.origin).resolve()


def library_version(name: str) -> str:
    """The installed version of timm / torchvision (read from package metadata, not imported)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        hint = install_hint(name) if name in ("timm", "torchvision") else f"pip install {name}"
        raise RexbenchError(f"{name} is not installed; install it with: {hint}") from None


def weights_provenance(weights: str | Path) -> dict[str, Any]:
    """What a record stores about a checkpoint: its resolved path and sha256, and the weights
    package and version it comes from, if one (rexbench.models.packaged)."""
    path = resolve_weights(weights)
    info: dict[str, Any] = {"weights": str(path.resolve()), "weights_sha256": _sha256(path)}
    if entry := packaged(weights):
        info.update(weights_package=entry.package, weights_version=package_version(entry))
    return info


def _sha256(path: Path) -> str:
    """A file's sha256 (hex), read in blocks of 1 MiB (a checkpoint can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
