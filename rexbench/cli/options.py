"""Every option and argument that more than one command takes, defined once (Typer `Annotated`)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from rexbench.measure.config import PRESET_HELP

# ------------------------------------------------------------------------------------ models

ModelsArg = Annotated[
    list[str],
    typer.Argument(
        help="Model names, aliases or specs (see `rexbench models`).", show_default=False
    ),
]
OptionalModelsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Model names, aliases or specs (see `rexbench models`).", show_default=False
    ),
]
AllOpt = Annotated[bool, typer.Option("--all", help="Every registered model.")]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        "--weights", help="Checkpoint to load (format detected automatically).", show_default=False
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
DtypeOpt = Annotated[Dtype, typer.Option("--dtype", help="Weights and input dtype.")]
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
    typer.Option("--compile-mode", help="torch.compile mode.", show_default=False),
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
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", help="torch threads (default: torch's setting).", show_default=False),
]

# ------------------------------------------------------------------------------ files, output

OutOpt = Annotated[
    Path, typer.Option("--out", help="Folder for the records (results/<machine-id>/).")
]
PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Record files or folders, searched recursively (default: results/).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the same data as JSON on stdout.")]
