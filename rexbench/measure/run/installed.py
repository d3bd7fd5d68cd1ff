"""What a run needs installed beyond rexbench's own dependencies, checked before anything is built:
the runtimes of its configurations (`rexbench[ort]`, `rexbench[openvino]`) and the quantizers of its
int8 ones (`rexbench[int8]`), timm or torchvision for `timm:` and `torchvision:` models, valgrind
for `--instructions`. Every missing one is named in the same line, so that one install makes the
run work (not one error per attempt)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    from rexbench.measure.config import RunConfig
    from rexbench.spec import ModelSpec


@dataclass(frozen=True)
class Missing:
    """One thing a run needs and this machine lacks."""

    name: str  # "ONNX Runtime"
    needed_by: str  # "--config ort"
    install: str  # "pip install 'rexbench[ort]'"
    alone: str  # the whole error when it is the only thing missing
    extra: str | None = None  # the rexbench extra that installs it ("ort")


def missing_runtimes(configs: Iterable[RunConfig]) -> list[Missing]:
    """The packages the backends of `configs` need and that are not installed: the runtimes and
    the quantizers of int8 configurations (Backend.packages; measure.backends.registry)."""
    from rexbench.measure.backends.registry import BACKENDS

    needed = {p.module: p for c in configs for p in BACKENDS.get(c.runtime).packages(c)}
    out = []
    for package in needed.values():
        alone = package.missing()
        if alone is not None:
            extra = package.extra.split("[")[-1].rstrip("]")
            out.append(Missing(package.title, package.needed_by, package.install(), alone, extra))
    return out


def missing_libraries(specs: Iterable[ModelSpec]) -> list[Missing]:
    """timm or torchvision, for the `timm:` / `torchvision:` specs, when not installed. A spec's
    own error (one that would download weights) comes first, as when the model is built."""
    from rexbench.models.external import install_hint, library_kwargs

    specs = [spec for spec in specs if spec.source in ("timm", "torchvision")]
    for spec in specs:
        library_kwargs(spec)
    first = {spec.source: spec for spec in reversed(specs)}  # the first spec of each source
    out = []
    for name in ("timm", "torchvision"):
        if name in first and importlib.util.find_spec(name) is None:
            hint = install_hint(name)
            alone = f"{name} is not installed; install it with: {hint}"
            out.append(Missing(name, str(first[name]), hint, alone))
    return out


def missing_valgrind() -> list[Missing]:
    """valgrind and callgrind_annotate, which --instructions runs (rexbench.measure.counting.instructions)."""
    from rexbench.measure.counting.instructions import check_available

    try:
        check_available()
    except RexbenchError as exc:
        install = "apt install valgrind (brew install valgrind on Intel macs)"
        return [Missing("valgrind", "--instructions", install, str(exc))]
    return []


def check_installed(
    configs: Iterable[RunConfig], specs: Iterable[ModelSpec] = (), instructions: bool = False
) -> None:
    """A RexbenchError naming everything the run needs and lacks, with how to install it."""
    configs = list(configs)
    missing = missing_runtimes(configs) + missing_libraries(specs)
    if instructions:
        missing += missing_valgrind()
    if len(missing) == 1:
        raise RexbenchError(missing[0].alone)
    if missing:
        raise RexbenchError(
            f"{len(missing)} things this run needs are not installed: {together(missing)}"
        )


def together(missing: list[Missing]) -> str:
    """ "ONNX Runtime (--config ort) and OpenVINO (--config openvino): pip install
    'rexbench[ort,openvino]'; timm (timm:resnet18): pip install timm ..." - one install per kind."""
    extras = [m for m in missing if m.extra is not None]
    parts = [f"{m.name} ({m.needed_by}): {m.install}" for m in missing if m.extra is None]
    if extras:
        names = " and ".join(f"{m.name} ({m.needed_by})" for m in extras)
        keys = ",".join(m.extra for m in extras if m.extra)
        parts.insert(0, f"{names}: pip install 'rexbench[{keys}]'")
    return "; ".join(parts)
