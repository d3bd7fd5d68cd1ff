"""Model specs: what the user typed, parsed into a canonical, hashable `ModelSpec`. Pure, no torch.

Built-in names resolve through the registry (aliases -> canonical name). External specs:
Spec syntax (the canonical string, `str(spec)`, is what records, tables, plots and baselines show):

    timm:NAME[.TAG][?KWARGS]             any timm.list_models() name; TAG picks timm's pretrained config
                                         (it sets the default input size); no weights are loaded
    torchvision:NAME[?KWARGS]            any torchvision.models.list_models() name, built with weights=None
    py:package.module:FACTORY[?KWARGS]   a callable in an importable module (installed or on PYTHONPATH)
    py:path/to/file.py:FACTORY[?KWARGS]  a callable in a Python file; a relative path is resolved against
                                         the current directory when the model is built

FACTORY may be dotted (`Net.from_config`); a class is a factory too. Source prefixes are case-insensitive;
timm/torchvision names are lowercased. KWARGS are `key=value` pairs joined by `&`, e.g.
`?width=1.5&num_classes=10`. Keys are Python identifiers, each given once; the canonical string lists them
sorted by key. Values (surrounding spaces dropped, `&` not allowed):
    true / false (any case)                       -> bool      (canonical: True / False)
    none / null (any case)                        -> None      (canonical: None)
    [+-]digits                                    -> int
    [+-]digits with a `.` and/or an exponent      -> float     (canonical: Python's repr, 1e3 -> 1000.0)
    'text' or "text"                              -> str, quotes removed (use it to keep "10" a string)
    anything else                                 -> str as written (relu, tf_same, inf)

A `py:` target ending in `.py` is a file (its path is normalized, `./a/../b.py` -> `b.py`); anything else
must be a dotted module name. Building (rexbench.models.external): `num_classes` from create_model
goes to timm models, torchvision classification models and `py:` factories whose signature names a
`num_classes` parameter; a `num_classes` in KWARGS always wins. `pretrained=True` / `weights=...` are
refused (nothing is downloaded; use --weights PATH). Input shapes: rexbench.models.shapes. Records: rexbench.models.provenance.

Every problem is a RexbenchError with one actionable line. Importing this module imports neither torch
nor timm nor torchvision; building does, inside the functions that need them.

The values of a list option (`--config eager,ort --config max`) are read by `split_values`, the grammar
the list options share.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.registry import MODELS

SOURCES = ("zoo", "timm", "torchvision", "py")
EXTERNAL_SOURCES = ("timm", "torchvision", "py")
_SOURCE_TYPOS = {"tv": "torchvision", "python": "py", "file": "py", "module": "py"}
LIST_HINT = {"timm": "timm.list_models()", "torchvision": "torchvision.models.list_models()"}

_ID = r"[A-Za-z_][A-Za-z0-9_]*"
_IDENT_RE = re.compile(_ID)
_DOTTED_RE = re.compile(rf"{_ID}(?:\.{_ID})*")
_LIB_NAME_RE = re.compile(r"[a-z0-9_]+")
_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")
_WORDS: dict[str, Any] = {"true": True, "false": False, "none": None, "null": None}


@dataclass(frozen=True)
class ModelSpec:
    """A model to build. `str(spec)` is the canonical string used in records, tables and baselines.

    source: "zoo" for the built-in registry, or an external library ("timm", "torchvision", "py").
    name: the canonical registry name, or the external name ("resnet50", "pkg.mod:factory").
    kwargs: builder keyword arguments given in the spec, as sorted (key, value) pairs.
    """

    source: str
    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        if self.source == "zoo":
            return self.name
        text = f"{self.source}:{self.name}"
        if self.kwargs:
            text += format_kwargs(self.kwargs)
        return text

    @property
    def kwargs_dict(self) -> dict[str, Any]:
        return dict(self.kwargs)


def parse(text: str) -> ModelSpec:
    """Parse a model name or spec. Zoo names resolve aliases to the canonical name.

    Raises RexbenchError with a one-line, actionable message for anything that does not parse.
    """
    text = text.strip()
    if not text:
        raise RexbenchError("empty model name; run `rexbench models` for the list")
    prefix, sep, rest = text.partition(":")
    if sep:  # timm:, torchvision:, py: (other prefixes are refused there, typos get a suggestion)
        return parse_external(prefix, rest)
    return ModelSpec("zoo", MODELS.canonical(text))


# --- external specs (pure) ----------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """One keyword value as typed in a spec -> bool / None / int / float / str (see the module doc)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    if _INT_RE.fullmatch(text):
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    return text


def format_value(value: Any) -> str:
    """The canonical text of a keyword value; `parse_value(format_value(v)) == v` for parsed values."""
    if isinstance(value, float):
        return repr(value)
    if not isinstance(value, str):
        return str(value)  # bool, None, int
    bare = parse_value(value)
    if value and value == value.strip() and isinstance(bare, str) and bare == value:
        return value
    return f'"{value}"' if "'" in value else f"'{value}'"


def format_kwargs(kwargs: tuple[tuple[str, Any], ...]) -> str:
    """`?k=v&k=v` for a spec's (sorted) kwargs, or '' when there are none."""
    if not kwargs:
        return ""
    return "?" + "&".join(f"{key}={format_value(value)}" for key, value in kwargs)


def parse_kwargs(text: str, spec_text: str) -> tuple[tuple[str, Any], ...]:
    """`width=1.5&num_classes=10` -> (("num_classes", 10), ("width", 1.5)), sorted by key."""
    example = "expected key=value pairs joined by '&', e.g. ?width=1.5&num_classes=10"
    if not text.strip():
        raise RexbenchError(f"{spec_text!r}: nothing after '?'; {example}")
    out: dict[str, Any] = {}
    for item in text.split("&"):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key or not value.strip():
            raise RexbenchError(
                f"{spec_text!r}: malformed keyword argument {item!r}; {example} (key='' for an empty string)"
            )
        if not _IDENT_RE.fullmatch(key):
            raise RexbenchError(f"{spec_text!r}: keyword {key!r} is not a Python identifier")
        if key in out:
            raise RexbenchError(f"{spec_text!r}: keyword {key!r} is given twice")
        out[key] = parse_value(value)
    return tuple(sorted(out.items()))


def parse_external(prefix: str, rest: str) -> ModelSpec:
    """`timm:`/`torchvision:`/`py:` text (split at the first ':') -> ModelSpec. Pure: imports nothing heavy.

    Unknown prefixes (typos such as `tim:`) are refused with a suggestion.
    """
    source = prefix.strip().lower()
    text = f"{prefix}:{rest}"
    if source not in EXTERNAL_SOURCES:
        raise RexbenchError(_unknown_source_message(prefix, rest))
    body, question, query = rest.partition("?")
    kwargs = parse_kwargs(query, text) if question else ()
    body = body.strip()
    name = (
        _parse_py_target(body, text) if source == "py" else _parse_library_name(source, body, text)
    )
    return ModelSpec(source, name, kwargs)


def _unknown_source_message(prefix: str, rest: str) -> str:
    low = prefix.strip().lower()
    guess = _SOURCE_TYPOS.get(low) or next(
        iter(difflib.get_close_matches(low, EXTERNAL_SOURCES, n=1, cutoff=0.6)), None
    )
    if guess is None and re.search(r"[./\\]", prefix):
        return f"unknown model source in {prefix}:{rest!s}; for your own code write 'py:{prefix}:{rest}'"
    did_you_mean = f" Did you mean '{guess}:{rest}'?" if guess else ""
    return (
        f"unknown model source '{prefix}:' in '{prefix}:{rest}'.{did_you_mean} Use timm:NAME, "
        "torchvision:NAME, py:module:factory, py:file.py:factory or a built-in name (`rexbench models`)"
    )


def _parse_library_name(source: str, body: str, text: str) -> str:
    name = body.lower()
    if not name:
        raise RexbenchError(
            f"{text!r}: empty model name; expected {source}:NAME (see {LIST_HINT[source]})"
        )
    if source == "timm":
        arch, dot, tag = name.partition(".")
        if not _LIB_NAME_RE.fullmatch(arch) or (dot and not _LIB_NAME_RE.fullmatch(tag)):
            raise RexbenchError(
                f"{text!r}: expected timm:NAME or timm:NAME.TAG (letters, digits, '_'), e.g. timm:resnet50.a1_in1k"
            )
    elif not _LIB_NAME_RE.fullmatch(name):
        raise RexbenchError(
            f"{text!r}: expected torchvision:NAME (letters, digits, '_'), e.g. torchvision:resnet50"
        )
    return name


def _parse_py_target(body: str, text: str) -> str:
    usage = "expected py:package.module:FACTORY or py:path/to/file.py:FACTORY"
    target, colon, factory = (part.strip() for part in body.rpartition(":"))
    if not colon or not factory or factory.endswith(".py") or re.search(r"[/\\]", factory):
        raise RexbenchError(f"{text!r}: missing factory name; {usage}")
    if not target:
        raise RexbenchError(f"{text!r}: missing module or file before ':{factory}'; {usage}")
    if not _DOTTED_RE.fullmatch(factory):
        raise RexbenchError(f"{text!r}: factory {factory!r} is not a Python name; {usage}")
    if target.endswith(".py"):
        if "\\" not in target:
            target = posixpath.normpath(target)
    elif re.search(r"[/\\]", target):
        raise RexbenchError(
            f"{text!r}: {target!r} looks like a path but does not end in .py; {usage}"
        )
    elif not _DOTTED_RE.fullmatch(target):
        raise RexbenchError(
            f"{text!r}: {target!r} is neither a module name nor a .py file; {usage}"
        )
    return f"{target}:{factory}"


def timm_name_tag(spec: ModelSpec) -> tuple[str, str | None]:
    """`timm:resnet50.a1_in1k` -> ("resnet50", "a1_in1k"); no tag -> (name, None)."""
    arch, dot, tag = spec.name.partition(".")
    return arch, (tag if dot else None)


def py_target(spec: ModelSpec) -> tuple[str, str, bool]:
    """`py:` spec -> (module name or file path as written, factory, is_file)."""
    target, _, factory = spec.name.rpartition(":")
    return target, factory, target.endswith(".py")


def resolve_py_file(target: str) -> Path:
    """A `py:` file path as written -> absolute path (relative paths against the current directory)."""
    path = Path(target).expanduser()
    return (path if path.is_absolute() else Path.cwd() / path).resolve()


def split_values(values: Iterable[str] | None) -> list[str]:
    """An option given repeatedly and/or comma-separated -> its values in order, stripped, blanks
    dropped: ["eager,ort", " max "] -> ["eager", "ort", "max"]."""
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]
