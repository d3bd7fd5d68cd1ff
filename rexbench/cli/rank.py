"""`rexbench rank study` (paper Figure 1) and `rexbench rank features` (paper Figure 5, right)."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rexbench.cli import rank_options as ro
from rexbench.cli.common import console, print_json, print_tables
from rexbench.cli.options import ClusterOpt, JsonOpt, ModelsArg, ResolutionOpt
from rexbench.errors import RexbenchError
from rexbench.rank.readings import DEFAULT_READING as READING
from rexbench.spec import split_values

if TYPE_CHECKING:
    from rexbench.rank.features import FeatureSpectrum
    from rexbench.rank.observations import Verdict
    from rexbench.rank.study import StudyConfig, StudyResult

rank = typer.Typer(
    name="rank",
    help="The paper's rank study: random-layer rank ratios (Figure 1) and feature spectra (Figure 5).",
    no_args_is_help=True,
)


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", "-o", help="Write the figure here (.png, .svg or .pdf).", show_default=False
    ),
]
RtolOpt = Annotated[
    float | None,
    typer.Option(
        "--rtol",
        help="Relative rank tolerance (singular values <= rtol x largest count as zero). "
        "Default: max(rows, cols) x fp32 eps, torch's own default.",
        show_default=False,
    ),
]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where to compute.")]
NetworksOpt = Annotated[
    int, typer.Option("--networks", "-n", help="Random networks per point (paper: 1000).")
]
RatiosOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ratios",
        help="Dimension ratios d_in/d_out, comma-separated (default 0.1,0.2,...,1.0).",
        show_default=False,
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed; same seed, same numbers.")]
BlocksOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--blocks",
        help="a/conv1x1, b/conv3x3, c/ib_conv3x3, d/ib_dw3x3 (default: all).",
        show_default=False,
    ),
]
ActivationsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--activations",
        help="relu, relu6, leaky_relu, elu, softplus, hardswish, silu, none (default: all).",
        show_default=False,
    ),
]
DOutOpt = Annotated[
    tuple[int, int], typer.Option("--d-out", help="Range of the random d_out (inclusive).")
]
WorkersOpt = Annotated[
    int,
    typer.Option(
        "--workers",
        "-j",
        help="Processes on this machine; the numbers do not depend on it (each network is "
        "seeded by its index).",
    ),
]
SpatialOpt = Annotated[
    int, typer.Option("--spatial", help="H = W of the random input (1: N is the batch).")
]


def _ratios(values: list[str] | None) -> tuple[float, ...] | None:
    items = split_values(values)
    if not items:
        return None
    try:
        return tuple(float(v) for v in items)
    except ValueError:
        raise RexbenchError(
            f"--ratios: expected numbers like 0.1,0.5,1.0, got {','.join(items)}"
        ) from None


def _check_device(device: Device) -> str:
    if device is Device.cuda:
        import torch

        if not torch.cuda.is_available():
            raise RexbenchError("--device cuda: CUDA is not available here; use --device cpu")
    return device.value


def _progress(description: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=True,
    )


def study_table(result: StudyResult):
    """Mean rank ratio per block, nonlinearity and dimension ratio; largest std over networks."""
    from rich import box
    from rich.table import Table

    from rexbench.rank.study import ACTIVATIONS, BLOCKS

    summary = result.summary()
    cfg = result.config
    table = Table(
        title=f"{cfg.reading.parsed_measure.name}(f(WX)) / d_out, mean over {cfg.networks} "
        "networks (paper Figure 1)",
        caption="columns: d_in/d_out; std: largest std over networks, across the ratios",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        show_edge=False,
    )
    table.add_column("blk")
    table.add_column("f")
    for ratio in cfg.ratios:
        table.add_column(f"{ratio:g}", justify="right")
    table.add_column("std", justify="right")
    for block, per_act in summary.items():
        for i, (act, stats) in enumerate(per_act.items()):
            table.add_row(
                f"({BLOCKS[block][0]})" if i == 0 else "",
                ACTIVATIONS[act],
                *(f"{m:.2f}" for m in stats["mean"]),
                f"{max(stats['std']):.2f}",
                end_section=i == len(per_act) - 1,
            )
    return table


def print_verdicts(verdicts: list[Verdict]) -> None:
    out = console()
    out.print("[bold]The paper's observations (section 3.2) on these numbers:[/bold]")
    colour = {True: "green", False: "red", None: "yellow"}
    for v in verdicts:
        out.print(
            f"  ({v.key}) [{colour[v.holds]}]{v.status}[/]: {v.claim}",
            highlight=False,
            soft_wrap=True,
        )
        for line in v.details:
            out.print(f"        {line}", highlight=False, soft_wrap=True)


@rank.command("study")
def study(
    networks: NetworksOpt = 100,
    ratios: RatiosOpt = None,
    seed: SeedOpt = 0,
    blocks: BlocksOpt = None,
    activations: ActivationsOpt = None,
    d_out: DOutOpt = READING.d_out_range,
    spatial: SpatialOpt = READING.spatial,
    rank_measure: ro.MeasureOpt = READING.measure,
    matrix: ro.MatrixOpt = READING.matrix,
    inputs: ro.InputsOpt = READING.inputs,
    n_ratio: ro.NRatioOpt = READING.n_ratio,
    bn: ro.BnOpt = READING.bn,
    bn_mode: ro.BnModeOpt = READING.bn_mode,
    init: ro.InitOpt = READING.init,
    dtype: ro.DtypeOpt = READING.dtype,
    centre: ro.CentreOpt = READING.centre,
    device: DeviceOpt = Device.cpu,
    workers: WorkersOpt = 1,
    cluster: ClusterOpt = None,
    out: OutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Rank ratio vs dimension ratio of random blocks for eight nonlinearities (paper Figure 1).

    Reading options (--d-out .. --centre): defaults and the search behind them in docs/rank-study.md.
    """
    from rexbench.rank.observations import observations
    from rexbench.rank.study import StudyConfig, resolve_activations, resolve_blocks

    kwargs: dict[str, Any] = {}
    if (parsed := _ratios(ratios)) is not None:
        kwargs["ratios"] = parsed
    cfg = StudyConfig(
        networks=networks,
        seed=seed,
        blocks=resolve_blocks(split_values(blocks)),
        activations=resolve_activations(split_values(activations)),
        reading=ro.reading_from(locals()),
        device=_check_device(device),
        **kwargs,
    )
    if out is not None:
        from rexbench.figures import check_figure_path

        check_figure_path(out, create_parent=True)
    result, wall = _sample(cfg, workers, cluster)
    verdicts = observations(cfg.ratios, result.curves(), result.reference())
    if out is not None:
        from rexbench.rank.plots import plot_study

        plot_study(result, out)
    if json_out:
        data = result.to_dict()
        data["observations"] = [v.to_dict() for v in verdicts]
        data["wall_time_s"], data["workers"], data["cluster"] = wall, workers, cluster
        data["figure"] = str(out) if out is not None else None
        print_json(data)
        return
    out_console = console()
    print_tables(study_table(result))
    print_verdicts(verdicts)
    out_console.print(
        f"reading: {cfg.reading.describe()}; seed {seed}; {wall:.1f} s",
        highlight=False,
        soft_wrap=True,
    )
    if out is not None:
        out_console.print(f"figure: {out}", highlight=False, soft_wrap=True)


def _sample(cfg: StudyConfig, workers: int, cluster: str | None) -> tuple[StudyResult, float]:
    """The study in this process, over `workers` processes or over a Ray cluster; its wall time."""
    from rexbench.rank.parallel import run_study_local

    if cluster is not None and (workers != 1 or cfg.device != "cpu"):
        raise RexbenchError(
            "--cluster spreads the study over the cluster's CPUs: leave out --workers and --device"
        )
    start = time.perf_counter()
    with _progress("random networks") as bar:
        task = bar.add_task("study", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if cluster is None:
            result = run_study_local(cfg, workers, progress)
        else:
            from rexbench.fleet.cluster import connect
            from rexbench.fleet.rank import run_study_on_cluster

            with connect(cluster) as ray:
                result = run_study_on_cluster(ray, cfg, progress)
    return result, time.perf_counter() - start


def features_table(spectra: list[FeatureSpectrum]):
    from rich import box
    from rich.table import Table

    table = Table(
        title="Penultimate features (classifier input): singular values (paper Figure 5)",
        caption="*: RANDOM weights (no checkpoint); n images; sv: singular value; nuclear: sum of "
        "sv; median: median of sv / sv max",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    for name in ("model", "classifier"):
        table.add_column(name, no_wrap=True)
    for name in ("n", "dim", "rank", "nuclear", "sv max", "median"):
        table.add_column(name, justify="right")
    for s in spectra:
        norm = sorted(s.normalized())
        median = norm[len(norm) // 2] if norm else 0.0
        top = s.singular_values[0] if s.singular_values else 0.0
        table.add_row(
            f"{s.model}*" if s.random_weights else s.model,
            s.layer,
            str(s.images),
            str(s.dim),
            str(s.rank),
            f"{s.nuclear_norm:.3g}",
            f"{top:.3g}",
            f"{median:.3f}",
        )
    return table


@rank.command("features")
def features(
    models: ModelsArg,
    weights: Annotated[
        list[Path] | None,
        typer.Option(
            "--weights",
            help="Checkpoint per model, in the models' order (repeat the option).",
            show_default=False,
        ),
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option(
            "--images",
            help="Folder of images (any format Pillow reads; searched recursively).",
            show_default=False,
        ),
    ] = None,
    count: Annotated[
        int, typer.Option("--count", help="Number of images (rank <= min(count, dim)).")
    ] = 128,
    resolution: ResolutionOpt = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the synthetic images and of random-init weights.")
    ] = 0,
    rtol: RtolOpt = None,
    out: OutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Singular values and nuclear norm of models' penultimate features; CDF plot (paper Figure 5)."""
    from rexbench.rank.features import feature_spectra

    if count < 1:
        raise RexbenchError(f"--count must be at least 1, got {count}")
    if out is not None:
        from rexbench.figures import check_figure_path

        check_figure_path(out, create_parent=True)
    paths = list(weights or [None] * len(models))
    if len(paths) != len(models):
        raise RexbenchError(
            f"give --weights once per model ({len(models)}), or not at all; got {len(paths)}"
        )
    spectra = []
    with _progress("models") as bar:
        task = bar.add_task("features", total=len(models))
        for name, path in zip(models, paths, strict=True):
            spectra += feature_spectra(
                [name],
                [path],
                images=images,
                count=count,
                resolution=resolution,
                seed=seed,
                rtol=rtol,
            )
            bar.update(task, advance=1)
    if out is not None:
        from rexbench.rank.plots import plot_spectra

        plot_spectra(spectra, out)
    if json_out:
        print_json(
            {
                "spectra": [s.to_dict() for s in spectra],
                "figure": str(out) if out is not None else None,
            }
        )
        return
    print_tables(features_table(spectra))
    source = f"images from {images}" if images else f"{count} seeded synthetic images (seed {seed})"
    _features_notes(spectra, source, out)


def _features_notes(spectra: list[FeatureSpectrum], source: str, out: Path | None) -> None:
    """Where the images came from, which weights were random, where the figure went."""
    console().print(f"inputs: {source}", highlight=False, soft_wrap=True)
    if random := [s.model for s in spectra if s.random_weights]:
        console().print(
            f"random weights (no --weights checkpoint) for {', '.join(random)}: these spectra "
            "describe the architecture at initialisation, not a trained model (the paper's "
            "Figure 5 uses trained models)",
            highlight=False,
            soft_wrap=True,
        )
    if out is not None:
        console().print(f"figure: {out}", highlight=False, soft_wrap=True)
