"""The model registry: one canonical name per built-in model, the aliases users type, and how to build it.

Pure data and name handling; builders are named as "module:function" strings and imported only when
a model is built, so listing and resolving names never imports torch.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rexbench.errors import RexbenchError

MAX_WIDTH = 4.0
# The narrowest layer of a thin ReXNet is its penultimate 1x1 convolution, int(1280 x width)
# channels (official ReXNetV1; the stem and first block keep 32 and 16 below x1.0): below
# 1/1280 it is empty. MIN_WIDTH is the smallest width of five decimals that builds.
PENULTIMATE = 1280
MIN_WIDTH = math.ceil(1e5 / PENULTIMATE) / 1e5


@dataclass(frozen=True)
class ModelEntry:
    """A built-in model: canonical name, family, builder and the resolution of the paper's comparison."""

    name: str
    family: str
    builder: str  # "module:function", imported lazily
    kwargs: dict[str, Any] = field(default_factory=dict)
    resolution: int = 224
    reference: str = ""  # the implementation whose counts and state dict this model reproduces
    aliases: tuple[str, ...] = ()
    params: int | None = None  # exact parameter count of the built model (PARAMS), when known

    def builder_fn(self) -> Callable[..., Any]:
        module_name, _, fn_name = self.builder.partition(":")
        return getattr(importlib.import_module(module_name), fn_name)

    def build(self, num_classes: int = 1000) -> Any:
        """Build the model (train mode, CPU, random init). Use `rexbench.create_model` for eval + weights."""
        return self.builder_fn()(num_classes=num_classes, **self.kwargs)


class Registry:
    """Name -> ModelEntry. Registering a name or alias twice is an error; so is an unknown name."""

    def __init__(self) -> None:
        self._entries: dict[str, ModelEntry] = {}
        self._lookup: dict[str, str] = {}  # normalized name or alias -> canonical name

    def register(self, entry: ModelEntry) -> ModelEntry:
        keys = {normalize(key): key for key in (entry.name, *entry.aliases)}
        for norm, key in keys.items():  # check every key first: a refused entry leaves no trace
            if norm in self._lookup:
                raise ValueError(f"{key!r} is already registered (for {self._lookup[norm]!r})")
        self._lookup.update(dict.fromkeys(keys, entry.name))
        self._entries[entry.name] = entry
        return entry

    def names(self) -> list[str]:
        return list(self._entries)

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: str) -> bool:
        try:
            self.get(name)
        except RexbenchError:
            return False
        return True

    def get(self, name: str) -> ModelEntry:
        """Resolve a canonical name, an alias, a paper spelling or a parametric width to its entry."""
        width = _parametric(name)
        if width is not None:
            return width
        norm = normalize(name)
        if norm in self._lookup:
            return self._entries[self._lookup[norm]]
        raise RexbenchError(_unknown_message(name, self._entries, self._lookup))

    def canonical(self, name: str) -> str:
        return self.get(name).name


GLOB_CHARS = "*?["


def is_pattern(name: str) -> bool:
    """A glob pattern over the built-in names ('rexnet_x1*', 'efficientnet_b?'), not a spec."""
    return any(c in name for c in GLOB_CHARS) and ":" not in name


def expand_patterns(names: Iterable[str], registry: Registry | None = None) -> list[str]:
    """Names with every glob pattern replaced by the built-in names (and aliases) it matches, in
    the registry's order; other names pass unchanged. A pattern that matches nothing is an error."""
    registry = registry if registry is not None else MODELS
    out: list[str] = []
    for name in names:
        if not is_pattern(name):
            out.append(name)
            continue
        pattern = name.strip().lower()
        found = [
            e.name
            for e in registry
            if any(fnmatch.fnmatchcase(key.lower(), pattern) for key in (e.name, *e.aliases))
        ]
        if not found:
            raise RexbenchError(
                f"no built-in model matches {name!r}; run `rexbench models` for the names "
                "(patterns: * any characters, ? one, [..] one of)"
            )
        out += [n for n in found if n not in out]
    return out


def normalize(name: str) -> str:
    """Fold case and separators so that 'ReXNet (x1.0)', 'rexnet_x1.0' and 'REXNET-X1.0' coincide."""
    return re.sub(r"[\s_()\-]+", "", name.strip().lower())


def format_width(width: float) -> str:
    """Shortest decimal that round-trips: 1.0 -> '1.0', 1.25 -> '1.25', 0.9 -> '0.9'."""
    return repr(float(width))


_WIDTH_RE = re.compile(r"rexnet[\s_-]*(?P<lite>lite)?[\s_-]*\(?\s*[x×]\s*(?P<w>[^)\s]*)\s*\)?")


def _parse_width(text: str, raw_name: str, prefix: str = "rexnet_x") -> float:
    try:
        width = float(text)
    except ValueError:
        raise RexbenchError(
            f"{raw_name!r}: width multiplier {text!r} is not a number (e.g. {prefix}1.0)"
        ) from None
    if not 0 < width <= MAX_WIDTH:  # also rejects nan
        raise RexbenchError(
            f"{raw_name!r}: width multiplier must be in (0, {MAX_WIDTH:g}], got {text}."
            f" Did you mean: {_closest_widths(prefix, width)}?"
        )
    if prefix == "rexnet_x" and int(PENULTIMATE * width) < 1:
        raise RexbenchError(
            f"{raw_name!r}: width {text} builds an empty layer (the penultimate 1x1 convolution "
            f"gets int({PENULTIMATE} x {text}) = 0 channels); the smallest width that builds is "
            f"{MIN_WIDTH:g}: {prefix}{MIN_WIDTH:g}"
        )
    return width


def _closest_widths(prefix: str, width: float) -> str:
    """The registered widths of a family nearest to an out-of-range `width`, as names."""
    widths = REXNET_WIDTHS if prefix == "rexnet_x" else REXNET_LITE_MULTIPLIERS
    near = sorted(widths, key=lambda w: abs(w - width) if width == width else w)[:3]
    return ", ".join(f"{prefix}{format_width(w)}" for w in near)


def _parametric(name: str) -> ModelEntry | None:
    """ReXNet and ReXNet-lite at any width: 'rexnet_x1.75', 'ReXNet-lite (x1.3)'."""
    match = _WIDTH_RE.fullmatch(name.strip().lower())
    if match is None:
        return None
    width = _parse_width(match["w"], name, "rexnet_lite_x" if match["lite"] else "rexnet_x")
    if match["lite"]:
        return rexnet_lite_entry(width)
    return rexnet_entry(width)


def _unknown_message(name: str, entries: dict[str, ModelEntry], lookup: dict[str, str]) -> str:
    norm = normalize(name)
    close = difflib.get_close_matches(norm, list(lookup), n=6, cutoff=0.6)
    suggestions: list[str] = []
    for key in close:
        canonical = lookup[key]
        if canonical not in suggestions:
            suggestions.append(canonical)
    hint = f" Did you mean: {', '.join(suggestions[:3])}?" if suggestions else ""
    return f"unknown model {name!r}.{hint} Run `rexbench models` for the full list."


# --- the built-in zoo ----------------------------------------------------------------------------

_REXNET = "rexbench.models.rexnet"
_EFFNET = "rexbench.models.efficientnet"
_MOBILE = "rexbench.models.mobilenet"

# The widths the paper reports (Tables 5, A1) and the ReXNet-lite multipliers (Table A2).
REXNET_WIDTHS = (0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 2.0, 2.2, 3.0)
REXNET_LITE_MULTIPLIERS = (1.0, 1.3, 1.5, 2.0)

# timm's names for the official ReXNet widths (timm/models/rexnet.py)
_TIMM_REXNET = {
    1.0: "rexnet_100",
    1.3: "rexnet_130",
    1.5: "rexnet_150",
    2.0: "rexnet_200",
    3.0: "rexnet_300",
}


def rexnet_entry(width: float) -> ModelEntry:
    """ReXNet v1 at width multiplier `width` (paper Tables 5 and A1; official `ReXNetV1`)."""
    alias = _TIMM_REXNET.get(width)
    return ModelEntry(
        name=f"rexnet_x{format_width(width)}",
        family="ReXNet",
        builder=f"{_REXNET}:rexnet",
        kwargs={"width_mult": width},
        reference=f"official clovaai ReXNetV1(width_mult={width:g})",
        aliases=(alias,) if alias else (),
    )


def rexnet_lite_entry(multiplier: float) -> ModelEntry:
    """ReXNet-lite at `multiplier` (paper Table A2; official `ReXNetV1_lite`)."""
    return ModelEntry(
        name=f"rexnet_lite_x{format_width(multiplier)}",
        family="ReXNet-lite",
        builder=f"{_REXNET}:rexnet_lite",
        kwargs={"multiplier": multiplier},
        reference=f"official clovaai ReXNetV1_lite(multiplier={multiplier:g})",
    )


def _builtin_entries() -> list[ModelEntry]:
    entries = [rexnet_entry(w) for w in REXNET_WIDTHS]
    entries += [rexnet_lite_entry(m) for m in REXNET_LITE_MULTIPLIERS]
    entries.append(
        ModelEntry(
            "rexnet_plain",
            "ReXNet (plain)",
            f"{_REXNET}:rexnet_plain",
            reference="reconstructed from the paper (section 4.4, Appendix B.2); no public code",
        )
    )
    # EfficientNet B0-B3 at the resolutions of the paper's Table 5 (torchvision's architecture).
    for i, res in enumerate((224, 240, 260, 300)):
        entries.append(
            ModelEntry(
                f"efficientnet_b{i}",
                "EfficientNet",
                f"{_EFFNET}:efficientnet_b",
                {"index": i},
                resolution=res,
                reference=f"torchvision efficientnet_b{i}",
            )
        )
    # EfficientNet-lite0-3 at the resolutions of the paper's Table A2 (timm's architecture).
    for i, res in enumerate((224, 240, 260, 280)):
        entries.append(
            ModelEntry(
                f"efficientnet_lite{i}",
                "EfficientNet-lite",
                f"{_EFFNET}:efficientnet_lite",
                {"index": i},
                resolution=res,
                reference=f"timm {'efficientnet_lite0' if i == 0 else f'tf_efficientnet_lite{i}'}",
                aliases=(f"tf_efficientnet_lite{i}",),
            )
        )
    entries += [
        ModelEntry(
            "mobilenet_v1",
            "MobileNetV1",
            f"{_MOBILE}:mobilenet_v1",
            reference="timm mobilenetv1_100",
            aliases=("mobilenetv1_100",),
        ),
        ModelEntry(
            "mobilenet_v2",
            "MobileNetV2",
            f"{_MOBILE}:mobilenet_v2",
            {"width_mult": 1.0},
            reference="torchvision mobilenet_v2",
            aliases=("mobilenetv2_100",),
        ),
        ModelEntry(
            "mobilenet_v2_x1.4",
            "MobileNetV2",
            f"{_MOBILE}:mobilenet_v2",
            {"width_mult": 1.4},
            reference="torchvision mobilenet_v2(width_mult=1.4)",
            aliases=("mobilenetv2_140",),
        ),
        ModelEntry(
            "mobilenet_v3_large",
            "MobileNetV3",
            f"{_MOBILE}:mobilenet_v3",
            {"size": "large"},
            reference="torchvision mobilenet_v3_large",
            aliases=("mobilenetv3_large_100",),
        ),
        ModelEntry(
            "mobilenet_v3_small",
            "MobileNetV3",
            f"{_MOBILE}:mobilenet_v3",
            {"size": "small"},
            reference="torchvision mobilenet_v3_small",
            aliases=("mobilenetv3_small_100",),
        ),
    ]
    return entries


# Exact parameter counts of the built-in models (1000 classes), so that listing them builds nothing:
# tests/test_registry.py builds every model on the meta device and checks each number.
PARAMS: dict[str, int] = {
    "rexnet_x0.9": 4_091_257,
    "rexnet_x1.0": 4_796_873,
    "rexnet_x1.1": 5_642_328,
    "rexnet_x1.2": 6_568_698,
    "rexnet_x1.3": 7_557_091,
    "rexnet_x1.4": 8_606_611,
    "rexnet_x1.5": 9_728_593,
    "rexnet_x2.0": 16_366_620,
    "rexnet_x2.2": 19_485_308,
    "rexnet_x3.0": 34_708_792,
    "rexnet_lite_x1.0": 4_740_056,
    "rexnet_lite_x1.3": 6_747_960,
    "rexnet_lite_x1.5": 8_332_296,
    "rexnet_lite_x2.0": 12_966_200,
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
    "mobilenet_v2": 3_504_872,
    "mobilenet_v2_x1.4": 6_108_776,
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "efficientnet_lite0": 4_652_008,
    "efficientnet_lite1": 5_416_680,
    "efficientnet_lite2": 6_092_072,
    "efficientnet_lite3": 8_197_096,
    "mobilenet_v1": 4_231_976,
    "rexnet_plain": 3_438_872,
}


def _build_registry() -> Registry:
    from dataclasses import replace

    registry = Registry()
    for entry in _builtin_entries():
        registry.register(replace(entry, params=PARAMS.get(entry.name)))
    return registry


MODELS = _build_registry()
