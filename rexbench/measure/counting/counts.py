"""Parameters and multiply-adds, from a table of counting backends; every number names its unit.

Backends (`COUNTERS`), all run on a batch-1 input in eval mode under `torch.no_grad()`:

- ``conv``   -> ``macs_conv``: multiply-adds of every Conv and Linear layer, bias not counted. This is
  the convention of the paper's "FLOPs" column.
- ``fvcore`` -> ``macs_fvcore``: ``FlopCountAnalysis(...).total()``; one fused multiply-add = one
  flop; adds 2 per BatchNorm element and 1 per adaptive-pool input element (timm's published numbers).
- ``thop``   -> ``macs_thop``: ``thop.profile`` total, always on a deep copy (thop registers buffers on
  the model it profiles); adds 4 per affine BatchNorm element and pool input + output elements.
- ``torch``  -> ``flops_torch``: ``torch.utils.flop_counter.FlopCounterMode`` total, 2 per multiply-add.

For each backend `Counts` also keeps the Conv/Linear multiply-adds that backend saw (so they can be
compared: they agree on every built-in model) and what it skipped, never a silent zero: fvcore's
unsupported ops, thop's leaf modules without a rule, torch ops without a flop formula, and for
``conv`` the modules holding their own weights that are neither Conv/Linear nor a norm layer.

Why ``macs_conv`` uses our own forward hooks: no library gives exactly "Conv + Linear multiply-adds"
through a stable API. fvcore's ``by_operator()`` buckets come close, but their keys are
handler-specific names ("conv", "linear", "addmm"), it needs a JIT trace, and it attributes a
functional call wherever it happens; thop only counts exact (not subclassed) types. A hook on each
Conv/Linear module is a one-line formula per layer, works on any model that runs, and gives the
per-module breakdown for free; the three libraries serve as independent cross-checks of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError, first_line
from rexbench.measure.counting.counters import (
    BACKENDS,
    evaluating,
    hooked,
    is_conv_or_linear,
    layer_macs,
)

if TYPE_CHECKING:
    from torch import nn

    from rexbench.spec import ModelSpec

COUNTERS: tuple[str, ...] = ("conv", "fvcore", "thop", "torch")
CONVENTIONS = (
    "macs_* count one multiply-add as one; flops_torch = 2 x MACs; "
    "macs_conv is the paper's FLOPs (Conv + Linear multiply-adds, bias not counted)"
)
#: The numbers a Counts holds, in its order: `rexbench count`'s columns and the gate's exact checks.
NUMBERS = (
    "params_total",
    "params_trainable",
    "macs_conv",
    "macs_fvcore",
    "macs_thop",
    "flops_torch",
)
DEFAULT_RESOLUTION = 224  # default input of `count_model` / `count_by_module` (a model at hand)


@dataclass(frozen=True)
class Counts:
    """Counts of one model on one input shape. `to_dict()` is the JSON form.

    conv_linear_macs: per backend, the Conv + Linear multiply-adds it saw (torch's halved to MACs).
    skipped: per backend, {op or module type: occurrences} it did not count.
    """

    input_shape: tuple[int, ...]
    params_total: int
    params_trainable: int
    macs_conv: int | None
    macs_fvcore: int | None
    macs_thop: int | None
    flops_torch: int | None
    conv_linear_macs: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["counters_agree"] = self.counters_agree
        return {"model": data.pop("model"), **data}

    @property
    def counters_agree(self) -> bool:
        """True if every backend that ran saw the same Conv + Linear multiply-adds."""
        return len(set(self.conv_linear_macs.values())) <= 1


@dataclass(frozen=True)
class ModuleRow:
    """One line of the per-module breakdown. name "" is the whole model."""

    name: str
    type: str
    depth: int
    params: int
    macs_conv: int
    output_shape: tuple[Any, ...] | None  # None if the module never ran

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIELD = {"conv": "macs_conv", "fvcore": "macs_fvcore", "thop": "macs_thop", "torch": "flops_torch"}


def count_model(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, DEFAULT_RESOLUTION, DEFAULT_RESOLUTION),
    counters: Sequence[str] = COUNTERS,
) -> Counts:
    """Params and the requested backends' counts for one zero-filled input of `input_shape`.

    The model is not mutated: forward passes run in eval mode under no_grad with every training
    flag restored afterwards, hooks are removed, and thop profiles a deep copy.
    """
    import torch

    unknown = [c for c in counters if c not in BACKENDS]
    if unknown:
        raise RexbenchError(
            f"unknown counter(s) {', '.join(unknown)}; known: {', '.join(COUNTERS)}"
        )
    x = torch.zeros(tuple(input_shape))
    params = list(model.parameters())
    values: dict[str, int | None] = dict.fromkeys(_FIELD.values())
    conv_linear: dict[str, int] = {}
    skipped: dict[str, dict[str, int]] = {}
    for name in COUNTERS:
        if name in counters:
            total, seen, skip = BACKENDS[name](model, x)
            values[_FIELD[name]] = total
            conv_linear[name] = seen
            skipped[name] = dict(sorted(skip.items()))
    return Counts(
        input_shape=tuple(int(d) for d in input_shape),
        params_total=sum(p.numel() for p in params),
        params_trainable=sum(p.numel() for p in params if p.requires_grad),
        conv_linear_macs=conv_linear,
        skipped=skipped,
        **values,
    )


def count_by_module(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, DEFAULT_RESOLUTION, DEFAULT_RESOLUTION),
    depth: int = 2,
) -> list[ModuleRow]:
    """Per-module params, Conv+Linear MACs (summed over descendants) and output shape, down to
    `depth` levels below the model (row "" is the whole model), in registration order."""
    import torch

    macs: Counter[str] = Counter()
    shapes: dict[str, Any] = {}

    def hook(name: str, module: nn.Module, inputs: tuple, output: Any) -> None:
        if is_conv_or_linear(module):
            macs[name] += layer_macs(module, inputs, output)
        if name.count(".") < depth:
            shapes[name] = _shape_of(output)

    with evaluating(model), hooked(model, hook):
        model(torch.zeros(tuple(input_shape)))
    rows = []
    for name, module in model.named_modules():
        level = 0 if name == "" else name.count(".") + 1
        if level > depth:
            continue
        prefix = f"{name}." if name else ""
        rows.append(
            ModuleRow(
                name=name,
                type=type(module).__name__,
                depth=level,
                params=sum(p.numel() for p in module.parameters()),
                macs_conv=sum(v for k, v in macs.items() if k == name or k.startswith(prefix)),
                output_shape=shapes.get(name),
            )
        )
    return rows


def _shape_of(output: Any) -> tuple[Any, ...] | None:
    import torch

    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)):
        return tuple(_shape_of(o) for o in output)
    return None


# --- by name: what the CLI calls ------------------------------------------------------------------


def count(
    spec_or_name: str | ModelSpec,
    resolution: int | None = None,
    weights: str | Path | None = None,
    *,
    input_shape: str | Sequence[int] | None = None,
    counters: Sequence[str] = COUNTERS,
) -> Counts:
    """Build a model by name or spec (optionally with weights) and count it at its default input
    (rexbench.models.shapes), `resolution`, or an explicit (C, H, W) `input_shape` ("3x224x224" too)."""
    spec, model, shape = _prepare(spec_or_name, resolution, weights, input_shape)
    counts = _run(spec, shape, lambda: count_model(model, shape, counters))
    return _with_model(counts, str(spec))


def count_modules(
    spec_or_name: str | ModelSpec,
    resolution: int | None = None,
    weights: str | Path | None = None,
    depth: int = 2,
    *,
    input_shape: str | Sequence[int] | None = None,
) -> tuple[str, tuple[int, ...], list[ModuleRow]]:
    """`count_by_module` by name: (canonical name, input shape, rows)."""
    if depth < 0:
        raise RexbenchError(f"depth must be 0 or more, got {depth}")
    spec, model, shape = _prepare(spec_or_name, resolution, weights, input_shape)
    return str(spec), shape, _run(spec, shape, lambda: count_by_module(model, shape, depth))


def _prepare(
    spec_or_name: str | ModelSpec,
    resolution: int | None,
    weights: str | Path | None,
    input_shape: str | Sequence[int] | None,
) -> tuple[ModelSpec, nn.Module, tuple[int, ...]]:
    """The spec, the built model and its (1, C, H, W) input (rexbench.models.shapes.resolve_input_shape);
    the options are checked before the model is built."""
    from rexbench.models.factory import create_model
    from rexbench.models.shapes import check_options, resolve_input_shape
    from rexbench.spec import parse

    spec = parse(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
    check_options(spec, input_shape, resolution)
    model = create_model(spec, weights=weights)
    return spec, model, (1, *resolve_input_shape(spec, model, input_shape, resolution))


def _run(spec: ModelSpec, shape: tuple[int, ...], fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except RuntimeError as exc:  # e.g. an input shape the model cannot take
        raise RexbenchError(
            f"could not run {spec} on input {'x'.join(map(str, shape))}: {first_line(exc)}"
        ) from exc


def _with_model(counts: Counts, name: str) -> Counts:
    return replace(counts, model=name)
