"""The backend protocol: one way of running a model (PyTorch and its presets, ONNX Runtime,
OpenVINO ...) is one `Backend` in one module, registered by name in
rexbench.measure.backends.registry. Nothing else in rexbench knows a backend's name.

A backend says which knobs it takes (devices, dtypes, PyTorch's preparation fields, options of its
own with their defaults), whether it can run here (`available`), how a configuration is labelled,
and how to prepare a model: `prepare` returns a `PreparedModel`, whose `run()` is the one call the
timing loop times and whose `output()` is that call's output as an fp32 NumPy array (what the output
check compares). What it did goes into the record's `timing.preparation.runtime`: name, version,
options, setup time, and whatever else the backend reports. No torch at import.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from rexbench.measure.config import RunConfig

DTYPES = ("fp32", "fp16", "bf16")
#: RunConfig fields that only PyTorch's own preparation uses (layout, BN folding, torch.compile).
TORCH_FIELDS = ("fold_bn", "channels_last", "compile", "freezing")
OptionValue = str | int | float | bool
#: A string option's value stays one word, so that labels and `--config NAME:KEY=VALUE` read back.
_VALUE_RE = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Option:
    """An option of a backend's own: its default (which also fixes its type) and one line of help."""

    default: OptionValue
    help: str
    choices: tuple[OptionValue, ...] = ()


@dataclass(frozen=True)
class Package:
    """A package a configuration needs: its import name, its name in messages, the pip extra
    that installs it, and who needs it ("--config openvino_int8")."""

    module: str
    title: str
    extra: str
    needed_by: str

    def install(self) -> str:
        """The pip command that installs it: "pip install 'rexbench[ort]'"."""
        return f"pip install '{self.extra}'"

    def missing(self) -> str | None:
        """None when it is installed, else the one line naming what needs it and how to install it."""
        if importlib.util.find_spec(self.module) is not None:
            return None
        return f"{self.needed_by} needs {self.title}, which is not installed: {self.install()}"


@dataclass(frozen=True)
class Preset:
    """A configuration name `--config` accepts: the RunConfig fields it sets (the backend's name
    and defaults fill in the rest)."""

    name: str
    help: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """One way of running a model. Subclasses set the class attributes and implement `prepare`;
    the defaults fit a backend that takes the model as it is and prepares it itself."""

    #: registry name; RunConfig.runtime holds it (None for PyTorch, the default backend)
    name: ClassVar[str]
    #: its name in messages and records ("ONNX Runtime")
    title: ClassVar[str]
    #: the package `available` looks for, and the pip extra that installs it
    module: ClassVar[str | None] = None
    extra: ClassVar[str | None] = None
    #: distributions whose version the record names (default: `module`)
    distributions: ClassVar[tuple[str, ...]] = ()
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    dtypes: ClassVar[tuple[str, ...]] = DTYPES
    #: whether it takes PyTorch's preparation fields (TORCH_FIELDS)
    torch_preparation: ClassVar[bool] = False
    #: whether its calls run in this process's PyTorch, where callgrind can count them
    countable: ClassVar[bool] = False
    #: whether preparing a configuration again in one run finds its costly step cached (the cache
    #: of built graphs, artifacts.py; torch.compile's kernels), which `rexbench tune` costs apart
    prepared_again_cheaply: ClassVar[bool] = False
    options: ClassVar[Mapping[str, Option]] = {}

    def presets(self) -> Sequence[Preset]:
        """The `--config` names it brings: by default its own name, with every option at its default."""
        return (Preset(self.name, self.title),)

    def config_name(self) -> str:
        """What `--config` calls it in messages: its first preset (by default its own name)."""
        return self.presets()[0].name

    def available(self, device: str) -> str | None:
        """None when it can run on `device` here, else the one-line reason (naming the extra to install)."""
        own = self.own_package()
        return None if own is None else own.missing()

    def load(self) -> Any:
        """Its package, imported now (one line naming the extra when it is missing)."""
        reason = self.available("cpu")
        if reason is not None:
            raise RexbenchError(reason)
        try:
            return importlib.import_module(str(self.module))
        except ImportError as exc:
            raise RexbenchError(
                f"{self.title} could not be imported ({exc}); reinstall '{self.extra}'"
            ) from None

    def version(self) -> str:
        """The installed version of its package."""
        from importlib.metadata import PackageNotFoundError, version

        for dist in self.distributions or ((self.module,) if self.module else ()):
            try:
                return version(dist)
            except PackageNotFoundError:
                continue
        return "unknown"

    def calibrates(self, config: RunConfig) -> bool:
        """Whether `config` quantizes to int8 with calibration images: `prepare` then takes
        `calibration` (rexbench.measure.backends.calibration), and the record gets the
        configuration's fidelity and its int8 verdict (rexbench.measure.checks.parity)."""
        return False

    def precision(self, config: RunConfig) -> str:
        """What the configuration computes in: "int8" when it quantizes, else its dtype."""
        return "int8" if self.calibrates(config) else config.dtype

    def packages(self, config: RunConfig) -> tuple[Package, ...]:
        """What `config` needs installed: the backend's own package, and a quantizer where the
        configuration quantizes (rexbench.measure.run.installed names the missing ones)."""
        own = self.own_package()
        return () if own is None else (own,)

    def own_package(self) -> Package | None:
        """The backend's own package (None for a backend built into PyTorch)."""
        if self.module is None:
            return None
        return Package(self.module, self.title, str(self.extra), f"--config {self.config_name()}")

    def refuses(self, config: RunConfig) -> str | None:
        """One line when this backend cannot run `config`'s precision (a dtype it does not run),
        else None; a machine that cannot is `available`'s and inputs.check_dtype's to say."""
        if config.dtype not in self.dtypes:
            return (
                f"{self.title} does not run {config.dtype}: use --dtype {' or '.join(self.dtypes)}"
            )
        return None

    def check(self, config: RunConfig) -> None:
        """Refuse, in one line, a configuration this backend cannot take (called by RunConfig)."""
        if not self.torch_preparation:
            used = [f for f in TORCH_FIELDS if getattr(config, f)]
            if used:
                raise RexbenchError(
                    f"--config {self.name} prepares the model itself: "
                    f"{', '.join(used)} apply to PyTorch configurations only"
                )
        kind = config.device.partition(":")[0]
        if kind not in self.devices:
            places = " and ".join(d.upper() for d in self.devices)
            raise RexbenchError(
                f"--config {self.name} runs on {self.title}'s {places} device only: "
                f"use --device {self.devices[0]}"
            )

    def check_options(self, given: Mapping[str, Any]) -> tuple[tuple[str, OptionValue], ...]:
        """The options a configuration gives, checked against `options` (unknown names, wrong
        types, values outside `choices` refused), defaults dropped, sorted: what RunConfig keeps."""
        import difflib

        kept = []
        for key, value in sorted(given.items()):
            if key not in self.options:
                close = difflib.get_close_matches(key, list(self.options), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                known = ", ".join(self.options) or "none"
                raise RexbenchError(
                    f"{self.name} has no option {key!r}{hint}; its options: {known}"
                )
            option = self.options[key]
            if isinstance(option.default, float) and type(value) is int:
                value = float(value)  # `--config NAME:KEY=2` for a float option
            if (
                type(value) is not type(option.default)
                or (option.choices and value not in option.choices)
                or (isinstance(value, str) and not _VALUE_RE.fullmatch(value))
            ):
                allowed = ", ".join(map(repr, option.choices)) or type(option.default).__name__
                raise RexbenchError(f"{self.name} option {key}={value!r}: expected {allowed}")
            if value != option.default:
                kept.append((key, value))
        return tuple(kept)

    def option_values(self, config: RunConfig) -> dict[str, Any]:
        """Every option's value in `config` (defaults filled in), as the record keeps them."""
        given = dict(config.options)
        return {key: given.get(key, option.default) for key, option in self.options.items()}

    def label(self, config: RunConfig) -> str:
        """The configuration's name (without the dtype) when it is none of the presets: the
        backend's name and every option that is not at its default, `toy:freeze=true`, as
        `--config` takes it."""
        return ":".join([self.name, *(f"{k}={format_option(v)}" for k, v in config.options)])

    def record(self, config: RunConfig, setup_s: float, **details: Any) -> dict[str, Any]:
        """What the record's `timing.preparation.runtime` keeps."""
        return {
            "name": self.title,
            "version": self.version(),
            "options": self.option_values(config),
            "setup_s": setup_s,
            **details,
        }

    @abstractmethod
    def prepare(
        self,
        model: nn.Module,
        config: RunConfig,
        device: str,
        *,
        default_resolution: int,
        input_shape: Sequence[int] | None = None,
        in_place: bool = False,
    ) -> PreparedModel:
        """`model` ready to time as `config` says on `device` (resolved: "cpu", "cuda:0"), with
        the dtype already checked. A deep copy, unless `in_place` hands the model over. A backend
        that `calibrates` the configuration also takes `calibration` (a keyword, a Calibration)."""


def parse_options(text: str, given: str) -> dict[str, Any]:
    """`KEY=VALUE:KEY=VALUE` as a dict; a VALUE reads as JSON where it can (true, 2, 0.5), else as
    a string."""
    import json

    options: dict[str, Any] = {}
    for pair in given.split(":"):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RexbenchError(f"--config {text}: expected NAME:KEY=VALUE, got {pair!r}")
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value.strip()
    return options


def format_option(value: Any) -> str:
    """An option's value as `parse_options` reads it back (true, 2, 0.5, basic)."""
    import json

    return value if isinstance(value, str) else json.dumps(value)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(fn(), seconds it took)."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def fp32_array(output: Any) -> np.ndarray:
    """A model's output (a torch tensor on any device or a NumPy array, or the first of a tuple /
    list / dict of them) as a C-contiguous fp32 NumPy array on the host: a copy, which the next
    call (CUDA graphs' static memory, a runtime's shared output) does not overwrite."""
    import numpy as np

    while isinstance(output, (tuple, list, dict)):
        output = next(iter(output.values())) if isinstance(output, dict) else output[0]
    if not isinstance(output, np.ndarray):  # a torch tensor
        output = output.detach().to(device="cpu").float().numpy()
    return np.array(output, dtype=np.float32, order="C")


def describe_input(x: Any) -> dict[str, Any]:
    """Shape, dtype and layout of a torch tensor or a NumPy array, as a record keeps them."""
    import torch

    is_tensor = isinstance(x, torch.Tensor)
    return {
        "input_shape": list(x.shape),
        "input_dtype": str(x.dtype).replace("torch.", ""),
        "input_channels_last": is_tensor
        and x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last),
    }


@dataclass
class PreparedModel:
    """A model ready to time: `run()` is one call on the prepared input (what the timing loop
    times); `output()` is one call's output as an fp32 NumPy array (what the output check reads).

    read: turns what `module` returns into that array (default `fp32_array`). input_info: what
    the record says about the input (default: `describe_input(input)`). compile_s: seconds of the
    first call of a compiled model, or a backend's whole setup, None when nothing was compiled.
    bn_folded / bn_remaining: BatchNorm layers folded away / left. cudagraphs: the warm-up of a
    model replayed as CUDA graphs (rexbench.measure.backends.cudagraphs.warm_up). runtime: what
    the backend did (Backend.record). feed: turns an fp32 NCHW NumPy array into the input
    `module` takes (`logits`), None for a torch tensor like `input`.
    """

    module: Any
    input: Any
    config: RunConfig
    device: str
    resolution: int
    compile_s: float | None = None
    bn_folded: int = 0
    bn_remaining: int = 0
    fold_method: str | None = None
    notes: list[str] = field(default_factory=list)
    cudagraphs: dict[str, Any] | None = None
    runtime: dict[str, Any] | None = None
    read: Callable[[Any], np.ndarray] = fp32_array
    input_info: dict[str, Any] | None = None
    feed: Callable[[np.ndarray], Any] | None = None

    def run(self) -> Any:
        return self.module(self.input)

    def output(self) -> np.ndarray:
        return self.read(self.run())

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """One call on other inputs than the timed one (an fp32 NCHW array of the configuration's
        batch size), its output as an fp32 array: what the fidelity check reads. `feed` turns the
        array into what `module` takes; by default a tensor like the timed input (device, dtype,
        memory format)."""
        return self.read(self.module(self.feed(batch) if self.feed else _like(self.input, batch)))

    def to_dict(self) -> dict[str, Any]:
        """What a record keeps about the preparation (not the module or the input)."""
        return {
            "device": self.device,
            "resolution": self.resolution,
            **(self.input_info or describe_input(self.input)),
            "compile_s": self.compile_s,
            "bn_folded": self.bn_folded,
            "bn_remaining": self.bn_remaining,
            "fold_method": self.fold_method,
            "notes": list(self.notes),
            **({"cudagraphs": self.cudagraphs} if self.cudagraphs is not None else {}),
            **({"runtime": dict(self.runtime)} if self.runtime is not None else {}),
        }


def _like(example: Any, batch: np.ndarray) -> Any:
    """An fp32 NCHW array as a torch tensor on `example`'s device, in its dtype and memory format."""
    import torch

    # an inference tensor where the timed input is one, else not: torch.compile guards on it, and
    # a guard that failed would compile the model again, without the timed graph's settings
    with torch.inference_mode(example.is_inference()):
        x = torch.from_numpy(batch).to(device=example.device, dtype=example.dtype)
        if x.dim() == 4 and example.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
    return x
