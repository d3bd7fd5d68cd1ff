"""Build `timm:`, `torchvision:` and `py:` models on CPU with random weights; nothing is downloaded.

The spec syntax and its parsing live in rexbench.spec (pure); this module is imported only
when an external model is built. timm and torchvision are imported here and nowhere else.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError, first_line
from rexbench.spec import (
    EXTERNAL_SOURCES,
    LIST_HINT,
    ModelSpec,
    format_value,
    py_target,
    resolve_py_file,
    timm_name_tag,
)

if TYPE_CHECKING:
    from types import ModuleType

    from torch import nn

# Keyword arguments that would make a library fetch weights from the network (nothing is ever downloaded).
_NO_DOWNLOAD = {"pretrained": False, "weights": None, "weights_backbone": None}


def build(spec: ModelSpec, num_classes: int = 1000) -> nn.Module:
    """Build an external model with random weights on CPU (nothing is downloaded).

    num_classes: passed to timm models and torchvision classification models, and to a `py:` factory
    only if its signature has a `num_classes` parameter. A `num_classes` in the spec's kwargs always wins.
    """
    builders: dict[str, Callable[[ModelSpec, int], Any]] = {
        "timm": _build_timm,
        "torchvision": _build_torchvision,
        "py": _build_py,
    }
    if spec.source not in builders:
        raise RexbenchError(f"{spec}: not an external model source ({', '.join(EXTERNAL_SOURCES)})")
    return builders[spec.source](spec, num_classes)


def install_hint(name: str) -> str:
    """How to install timm or torchvision without losing the installed torch: a plain `pip install`
    may replace a CPU build of torch by a multi-GB CUDA one, and torchvision only loads beside the
    torch it was built for (torch 2.N pairs with torchvision 0.(N+15); a +cpu torch with a +cpu
    torchvision from the index that torch came from)."""
    torch = _torch_version()
    minor = torch.split(".")[1] if torch.startswith("2.") else ""
    vision = f'"torchvision==0.{int(minor) + 15}.*"' if minor.isdigit() else "torchvision"
    cpu = " (a +cpu torchvision, from the index this torch came from)" if "+cpu" in torch else ""
    first = "timm " if name == "timm" else ""
    if not torch[:1].isdigit():  # torch's metadata cannot be read: nothing to pin
        return f"pip install {first}torchvision (the release built for your torch; see docs/external-models.md)"
    return (
        f'pip install {first}{vision} "torch=={torch}" (pins your torch, so pip keeps it; '
        f"torchvision must be the release built for torch {torch}{cpu}; see docs/external-models.md)"
    )


def import_library(name: str) -> ModuleType:
    """Import timm or torchvision, or say exactly what to install."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        if missing == name:
            raise RexbenchError(
                f"{name} is not installed; install it with: {install_hint(name)}"
            ) from None
        raise RexbenchError(
            f"{name} is installed but cannot be imported ({exc}); reinstall it with: {install_hint(name)}"
        ) from None
    except Exception as exc:
        # e.g. a torchvision built for another torch: "operator torchvision::nms does not exist"
        raise RexbenchError(
            f"importing {name} failed ({first_line(exc)}); it must be built "
            f"for the installed torch {_torch_version()}: {install_hint(name)}"
        ) from None


def library_kwargs(spec: ModelSpec) -> dict[str, Any]:
    """The keyword arguments of a timm or torchvision spec; one that would download weights is
    refused (nothing is imported)."""
    kwargs = spec.kwargs_dict
    for key, allowed in _NO_DOWNLOAD.items():
        if key in kwargs and kwargs[key] != allowed:
            raise RexbenchError(
                f"{spec}: {key}={format_value(kwargs[key])} would download weights; rexbench builds "
                "models without them - load a local checkpoint with --weights PATH"
            )
    return kwargs


def _build_timm(spec: ModelSpec, num_classes: int) -> nn.Module:
    kwargs = library_kwargs(spec)
    timm = import_library("timm")
    arch, tag = timm_name_tag(spec)
    if not timm.is_model(arch):
        raise RexbenchError(_unknown_name("timm", arch, timm.list_models()))
    if tag is not None:
        tags = [name.partition(".")[2] for name in timm.list_pretrained(f"{arch}.*")]
        if tag not in tags:
            close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.5)
            hint = (
                f" Did you mean: {', '.join(f'timm:{arch}.{t}' for t in close)}?" if close else ""
            )
            raise RexbenchError(
                f"timm model {arch!r} has no tag {tag!r}.{hint} See timm.list_pretrained('{arch}.*')"
            )
    kwargs.setdefault("num_classes", num_classes)
    kwargs["pretrained"] = False
    return _checked(spec, "timm.create_model", lambda: timm.create_model(spec.name, **kwargs))


def _build_torchvision(spec: ModelSpec, num_classes: int) -> nn.Module:
    kwargs = library_kwargs(spec)
    models = import_library("torchvision").models
    if spec.name not in models.list_models():
        raise RexbenchError(_unknown_name("torchvision", spec.name, models.list_models()))
    if "weights_backbone" in _parameters(models.get_model_builder(spec.name)):
        kwargs.setdefault("weights_backbone", None)  # detection models default to downloading one
    if spec.name in models.list_models(module=models):  # classification models only
        kwargs.setdefault("num_classes", num_classes)
    kwargs["weights"] = None
    return _checked(
        spec, "torchvision.models.get_model", lambda: models.get_model(spec.name, **kwargs)
    )


def _build_py(spec: ModelSpec, num_classes: int) -> nn.Module:
    factory_name = py_target(spec)[1]
    with _on_sys_path(_py_folder(spec)):
        with _user_code(spec, "it was imported"):
            factory = _py_factory(spec, reuse=False)
        kwargs = spec.kwargs_dict
        if "num_classes" not in kwargs and "num_classes" in _parameters(factory):
            kwargs["num_classes"] = num_classes
        with _user_code(spec, f"{factory_name}() built the model"):
            return _checked(spec, f"{factory_name}()", lambda: factory(**kwargs))


def declared_input_shape(spec: ModelSpec) -> Any:
    """The `default_input_shape` attribute of a `py:` spec's factory, as written (None without one).

    A file that `build` has loaded is not run again: its module is the one that built the model.
    """
    with _on_sys_path(_py_folder(spec)), _user_code(spec, "it was imported"):
        factory = _py_factory(spec, reuse=True)
    return getattr(factory, "default_input_shape", None)


def _py_folder(spec: ModelSpec) -> Path | None:
    target, _, is_file = py_target(spec)
    return resolve_py_file(target).parent if is_file else None


def _py_factory(spec: ModelSpec, reuse: bool) -> Callable[..., Any]:
    """The callable a `py:` spec names. reuse: take a file's module loaded earlier, if any."""
    target, factory_name, is_file = py_target(spec)
    module = _load_file(spec, target, reuse) if is_file else _import_module(spec, target)
    factory = _attribute(spec, module, factory_name, target)
    if not callable(factory):
        raise RexbenchError(
            f"{spec}: {factory_name} in {target} is a {type(factory).__name__}, not a callable "
            "that returns an nn.Module"
        )
    return factory


def _checked(spec: ModelSpec, what: str, make: Callable[[], Any]) -> nn.Module:
    """Call a builder; its exceptions and a non-module result become one line."""
    from torch import nn

    try:
        model = make()
    except RexbenchError:
        raise
    except Exception as exc:
        raise RexbenchError(f"{spec}: {what} raised {first_line(exc)}") from exc
    if isinstance(model, type) and issubclass(model, nn.Module):
        raise RexbenchError(f"{spec}: {what} returned the class {model.__name__}, not an instance")
    if not isinstance(model, nn.Module):
        raise RexbenchError(
            f"{spec}: {what} returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def _load_file(spec: ModelSpec, target: str, reuse: bool = False) -> ModuleType:
    """Execute a .py file as a fresh module (compiled from the bytes read now: no stale bytecode).

    reuse: return the module this file was last loaded as, if it is still in sys.modules.
    """
    path = resolve_py_file(target)
    stem = re.sub(r"\W", "_", path.stem)
    name = f"_rexbench_py_{stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    if reuse and name in sys.modules:
        return sys.modules[name]
    if not path.is_file():
        raise RexbenchError(f"{spec}: file {target} not found (looked for {path})")
    source = path.read_bytes()
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None:
        raise RexbenchError(f"{spec}: cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses, pickling and typing look the module up by name
    try:
        exec(compile(source, str(path), "exec", dont_inherit=True), module.__dict__)
    except SystemExit:
        sys.modules.pop(name, None)
        raise  # _user_code says whose exit it was
    except Exception as exc:
        sys.modules.pop(name, None)
        raise RexbenchError(f"{spec}: running {target} failed: {first_line(exc)}") from exc
    return module


def _import_module(spec: ModelSpec, target: str) -> ModuleType:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and (target == exc.name or target.startswith(exc.name + ".")):
            _, factory, _ = py_target(spec)
            raise RexbenchError(
                f"{spec}: no module named {exc.name!r}; install it, add its folder to PYTHONPATH, "
                f"or name the file: py:path/to/file.py:{factory}"
            ) from None
        raise RexbenchError(f"{spec}: importing {target} failed: {exc}") from exc
    except Exception as exc:
        raise RexbenchError(f"{spec}: importing {target} failed: {first_line(exc)}") from exc


def _attribute(spec: ModelSpec, module: ModuleType, dotted: str, where: str) -> Any:
    obj: Any = module
    for part in dotted.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3, cutoff=0.6)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise RexbenchError(f"{spec}: {where} has no attribute {part!r}.{hint}")
        obj = getattr(obj, part)
    return obj


@contextmanager
def _user_code(spec: ModelSpec, while_: str) -> Iterator[None]:
    """Run a `py:` file's code as a guest: sys.argv holds only the file's name (a script that parses
    arguments when imported sees none of rexbench's), what it prints goes to stderr once it is
    done (stdout stays rexbench's, for tables and --json), and its sys.exit() becomes a one-line
    RexbenchError that names the file, not an exit of rexbench."""
    import contextlib
    import io

    target = py_target(spec)[0]
    saved, said = sys.argv, io.StringIO()
    sys.argv = [target]
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            yield
    except SystemExit as exc:
        lines = [line.strip() for line in said.getvalue().splitlines() if line.strip()]
        last = f" (its last words: {lines[-1]})" if lines else ""
        raise RexbenchError(
            f"{spec}: {target} called sys.exit({exc.code!r}) while {while_}{last}; that is the "
            "file's doing, not rexbench's: a py: factory must return an nn.Module without exiting "
            '(keep script code under `if __name__ == "__main__":`)'
        ) from None
    finally:
        sys.argv = saved
    sys.stderr.write(said.getvalue())


@contextmanager
def _on_sys_path(folder: Path | None) -> Iterator[None]:
    """Let a `py:` file import its sibling modules while it is loaded and its factory runs."""
    if folder is None:
        yield
        return
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)


def _parameters(fn: Any) -> dict[str, inspect.Parameter]:
    """Named parameters that can be passed by keyword ({} when the signature cannot be read)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name: p for name, p in params.items() if p.kind in kinds}


def _unknown_name(source: str, name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f" Did you mean: {', '.join(f'{source}:{c}' for c in close)}?" if close else ""
    return f"unknown {source} model {name!r}.{hint} See {LIST_HINT[source]}"


def _torch_version() -> str:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"
