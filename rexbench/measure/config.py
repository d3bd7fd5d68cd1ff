"""Run configurations: how a model is prepared and measured (backend, presets, device, batch, threads).

A configuration names its backend (rexbench.measure.backends.registry), which checks it, names it
(`label`) and knows its presets; its id hashes the fields that change what is measured. No torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rexbench.errors import RexbenchError
from rexbench.measure.backends.base import DTYPES
from rexbench.measure.backends.registry import BACKENDS, DEFAULT_BACKEND, DEFAULT_PRESET
from rexbench.models.shapes import check_options
from rexbench.spec import split_values

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# Fields that only change what happens on CUDA; ignored by `config_id` on other devices.
_CUDA_ONLY = ("cudnn_benchmark", "allow_tf32", "flush_l2")
# Fields that change how many samples are taken, not what is measured; ignored by `config_id`.
_NOT_IDENTITY = ("runs", "warmup")
# Optional fields added after the first records were written: left out of `config_id` while None
# (or empty), so the ids of configurations that do not use them stay what they were.
_OPTIONAL_IDENTITY = ("input_shape", "runtime", "options")
# Switches added later that are off by default: left out of `config_id` while off, likewise.
_OFF_BY_DEFAULT = ("flush_l2",)
_DEVICE_RE = re.compile(r"cpu|cuda(:[0-9]+)?")


def default_batch_size(device: str) -> int:
    """1 on CPU, 64 on CUDA: the batch sizes of the paper's CPU and GPU latency columns (Table 4)."""
    return 64 if device.startswith("cuda") else 1


@dataclass(frozen=True)
class RunConfig:
    """How to prepare and measure a model. `label` names it in tables, `config_id` identifies it.

    resolution None means the model's own default; input_shape (C, H, W) is for inputs that are not
    3 x R x R (give one of resolution and input_shape); threads None means torch's current setting
    (the number actually used is recorded with the timing). cudnn_benchmark and allow_tf32 only
    matter on CUDA; TF32 is off unless asked for, so fp32 means fp32. flush_l2 (CUDA only, off by
    default) overwrites a buffer larger than the GPU's L2 cache before every timed call, outside the
    timed region (rexbench.measure.timing.l2flush), so each call starts with a cold L2. runtime: the
    backend that runs the model, by its registered name (None: PyTorch); options: that backend's own
    options (a mapping; kept sorted, defaults dropped). fold_bn, channels_last, compile,
    compile_mode and freezing are PyTorch's preparation, refused by the backends that prepare the
    model themselves.
    """

    device: str = "cpu"
    batch_size: int = 1
    resolution: int | None = None
    dtype: str = "fp32"
    channels_last: bool = True
    compile: bool = True
    compile_mode: str = "default"
    fold_bn: bool = False
    freezing: bool = False
    threads: int | None = None
    runs: int = 1000
    warmup: int = 20
    cudnn_benchmark: bool = True
    allow_tf32: bool = False
    input_shape: tuple[int, int, int] | None = None
    flush_l2: bool = False
    runtime: str | None = None
    options: Mapping[str, Any] | tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not _DEVICE_RE.fullmatch(self.device):
            raise RexbenchError(f"unknown device {self.device!r}; use cpu, cuda or cuda:N")
        if self.dtype not in DTYPES:
            raise RexbenchError(f"unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}")
        if self.compile_mode not in COMPILE_MODES:
            raise RexbenchError(
                f"unknown compile mode {self.compile_mode!r}; choose one of {', '.join(COMPILE_MODES)}"
            )
        for name, low in (("batch_size", 1), ("runs", 1), ("warmup", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise RexbenchError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in ("resolution", "threads"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise RexbenchError(f"{name} must be a positive integer, got {value!r}")
        if self.input_shape is not None:  # one of resolution and input_shape (models.shapes)
            shape = check_options(None, self.input_shape, self.resolution, exclusive=True)
            object.__setattr__(self, "input_shape", shape)  # a list from JSON becomes a tuple
        if self.freezing and not self.compile:
            raise RexbenchError("inductor freezing needs torch.compile; add --compile")
        if self.flush_l2 and not self.device.startswith("cuda"):
            raise RexbenchError("--flush-l2 flushes a GPU's L2 cache: it needs --device cuda")
        if self.runtime == DEFAULT_BACKEND:
            object.__setattr__(self, "runtime", None)  # one spelling: the ids say None
        backend = BACKENDS.get(self.runtime)
        object.__setattr__(self, "options", backend.check_options(dict(self.options)))
        backend.check(self)

    @classmethod
    def preset(cls, name: str, device: str = "cpu", **overrides: Any) -> RunConfig:
        """A named configuration (a backend's preset); batch size defaults to the device's (1 CPU, 64 CUDA)."""
        fields = BACKENDS.preset_fields(name)
        fields.update(device=device, batch_size=default_batch_size(device))
        fields.update(overrides)
        return cls(**fields)

    @property
    def preset_name(self) -> str | None:
        """The preset whose preparation fields this config matches, or None."""
        return BACKENDS.preset_of(self)

    @property
    def label(self) -> str:
        """Short stable name of the preparation: a preset name, else what its backend composes.

        Examples: "compile_cl", "max", "eager+bf16", "cl+compile:max-autotune", "toy:mode=script".
        Device, batch size and threads are not part of the label (they have columns of their own).
        """
        name = BACKENDS.label(self)
        return name if self.dtype == "fp32" else f"{name}+{self.dtype}"

    @property
    def config_id(self) -> str:
        """12 hex digits hashing every field that affects the measured value.

        runs/warmup only change how many samples are taken, so they are left out; so are the
        CUDA-only switches on other devices and compile_mode without compile. Equal ids mean
        "identical configuration".
        """
        import hashlib
        import json

        skip = set(_NOT_IDENTITY) | (set() if self.device.startswith("cuda") else set(_CUDA_ONLY))
        if not self.compile:
            skip.add("compile_mode")
        skip |= {k for k in _OPTIONAL_IDENTITY if getattr(self, k) in (None, ())}
        skip |= {k for k in _OFF_BY_DEFAULT if not getattr(self, k)}
        identity = {k: v for k, v in self.to_dict().items() if k not in skip}
        blob = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON values (field order; input_shape as a list and options as an object,
        as JSON reads them back)."""
        from dataclasses import asdict

        data = asdict(self)
        if data["input_shape"] is not None:
            data["input_shape"] = list(data["input_shape"])
        data["options"] = dict(self.options)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of to_dict. Missing fields take their defaults; unknown fields are an error."""
        from dataclasses import fields

        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RexbenchError(
                f"unknown run-config field(s) {', '.join(unknown)}; was the record written by a newer rexbench?"
            )
        return cls(**data)


# ------------------------------------------------------------------------ from command-line options

PRESET_HELP = BACKENDS.help_line()


@dataclass(frozen=True)
class ConfigOptions:
    """The options that describe run configurations (profile, sweep, baseline save).

    names: `--config` values (repeatable, comma-separated); None when not given. channels_last,
    compile, compile_mode and batch_size None mean the default.
    """

    device: str = "cpu"
    batch_size: int | None = None
    runs: int = 1000
    warmup: int = 20
    resolution: int | None = None
    dtype: str = "fp32"
    channels_last: bool | None = None
    compile: bool | None = None
    compile_mode: str | None = None
    names: Sequence[str] | None = None
    threads: int | None = None
    flush_l2: bool = False


def build_configs(options: ConfigOptions) -> tuple[list[RunConfig], str]:
    """The RunConfigs the options describe, and a line saying which and why (the defaults)."""
    o = options
    RunConfig(device=o.device)  # an unknown device is refused before anything else
    common: dict[str, Any] = dict(
        device=o.device,
        batch_size=o.batch_size if o.batch_size is not None else default_batch_size(o.device),
        resolution=o.resolution,
        dtype=o.dtype,
        threads=o.threads,
        runs=o.runs,
        warmup=o.warmup,
    )
    if o.flush_l2:
        common["flush_l2"] = True
    wanted = split_values(o.names)
    if o.names is not None and not wanted:
        raise RexbenchError(f"--config needs a configuration name: {PRESET_HELP}")
    if wanted:
        if o.channels_last is not None or o.compile is not None:
            raise RexbenchError(
                "--config names whole configurations: drop --channels-last/--compile, or drop --config"
            )
        configs = [RunConfig.preset(name, **common) for name in dict.fromkeys(wanted)]
        note = "configurations " + ", ".join(c.label for c in configs) + " (measured interleaved)"
    else:
        configs, note = _default_config(o, common)
    if o.compile_mode is not None:
        if not any(c.compile for c in configs):
            raise RexbenchError("--compile-mode needs a compiled configuration (drop --no-compile)")
        from dataclasses import replace

        configs = [replace(c, compile_mode=o.compile_mode) if c.compile else c for c in configs]
    return configs, f"{note}; batch {common['batch_size']} on {o.device}"


def _default_config(o: ConfigOptions, common: dict[str, Any]) -> tuple[list[RunConfig], str]:
    """The default preset, with --channels-last / --compile switched as asked, and its note."""
    fields = BACKENDS.preset_fields(DEFAULT_PRESET)
    if o.channels_last is not None:
        fields["channels_last"] = o.channels_last
    if o.compile is not None:
        fields["compile"] = o.compile
    config = RunConfig(**fields, **common)
    what = [
        "torch.compile" if config.compile else "eager (no torch.compile)",
        "channels-last" if config.channels_last else "NCHW (no channels-last)",
    ]
    default = o.channels_last is None and o.compile is None
    note = f"configuration {config.label}: {' + '.join(what)}" + (
        " (the default; compare with --config eager,compile_cl,max)" if default else ""
    )
    return [config], note
