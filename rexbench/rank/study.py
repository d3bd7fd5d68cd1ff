"""The paper's rank study (section 3.2, Figure 1): rank(f(WX)) / d_out over random-sized networks.

What the paper fixes (section 3.2 "Materials", footnotes 1-2, Figure 1 caption): one building block
per network ((a) 1x1 conv, (b) 3x3 conv, (c) inverted bottleneck (IB) with a 3x3 conv, (d) IB with a
3x3 depthwise conv; see `rexbench.rank.blocks`), seven nonlinearities and none, the feature f(WX) with
W in R^{d_out x d_in}, X in R^{d_in x N}, "f a nonlinear function with the normalization (we use a BN
here)", d_out random per network, d_in = round(ratio x d_out) for ratios in [0.1, 1.0], "N denotes
the batch size, where we set N > d_out > d_in", and rank ratio = rank(f(WX)) / d_out averaged over
networks. Everything else is a choice, named by a `rexbench.rank.readings.Reading`.

The default reading is the one closest to that text, because none of the readings searched reproduces
Figure 1 (benchmarks/rank_readings.py, results/rank/readings.txt, docs/rank-study.md: 34 readings x 10
rank measures; at best 2 of the 3 observations hold, and which one fails changes with the reading):

- ``rank``: the numerical rank at the default tolerance max(rows, cols) x eps x sigma_max, the
  rank(.) of the text as torch.linalg.matrix_rank computes it (no tolerance is given);
- ``spatial=1``: X in R^{d_in x N} with N the batch size, read literally: one d_in-vector per sample
  (1x1 maps), so the feature matrix is N x d_out. It is also the only grid on which "the rank is
  originally bounded to the input dimension" holds for every block (on an HxW grid a 3x3 conv sees
  9 x d_in numbers per position, and its linear rank is min(9 x d_in, d_out)). The price: a 3x3 conv
  on a 1x1 map uses only its centre tap, so (b) is (a) with other weights, and a depthwise 3x3 is a
  per-channel scale. ``--spatial 8`` keeps a grid (the pre-search default);
- ``bn="pre"``, ``bn_mode="train"``: conv -> BN -> f, the BN of a freshly built network, which
  normalises with batch statistics (gamma 1, beta 0);
- Gaussian N(0, 1) inputs, N = 2 x d_out, d_out uniform in 16..96, He-style weights, fp32: not given
  by the paper; with batch-statistics BN after every conv the weight scale does not matter.

Under this reading the exact rank puts every nonlinear curve at full rank from d_in/d_out = 0.2 on
(HardSwish, a quadratic on [-3, 3], from 0.3; a pointwise nonlinearity of a rank-d_in matrix is
generically of full rank, the paper's reference [1]), so none of the observations holds: the IBs lose
no rank, and every nonlinearity lifts alike. results/rank/figure1.txt shows it with 1,000 networks per
point. The other readings stay available (`Reading`; `rexbench rank study --rank-measure ...`).

Common random numbers: network i has one d_out; for each ratio it has one input X, shared by every block,
and per block one set of weights, shared by every nonlinearity. So curves differ only by what they name,
and a study restricted to some blocks or activations reproduces the full study's numbers for them. The
measure of X itself (`StudyResult.inputs`) is recorded too: the input dimension in the measure's own
units, above which the observations take the lift.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError
from rexbench.rank.blocks import ACTIVATIONS as ACTIVATIONS  # re-exported for the CLI and plots
from rexbench.rank.blocks import BLOCKS as BLOCKS
from rexbench.rank.blocks import _generator, block_maps, input_channels
from rexbench.rank.blocks import block_outputs as block_outputs
from rexbench.rank.blocks import resolve_activations as resolve_activations
from rexbench.rank.blocks import resolve_blocks as resolve_blocks
from rexbench.rank.measures import FP32_EPS as FP32_EPS  # re-exported: the rule's old home
from rexbench.rank.measures import Measure, from_singular_values
from rexbench.rank.measures import default_rtol as default_rtol
from rexbench.rank.measures import matrix_rank as matrix_rank
from rexbench.rank.readings import DEFAULT_READING, Reading, feature_matrices, make_input

if TYPE_CHECKING:
    import torch

DEFAULT_RATIOS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))


@dataclass(frozen=True)
class StudyConfig:
    """What to sample; the paper uses 1,000 networks. With the default reading 1,000 networks cost
    2 min 10 s of CPU (4 min 55 s wall on the shared, loaded 2-core machine); the default 100, a tenth.

    `threads=1`: these matrices are small, and on a shared 2-core machine two intra-op threads made
    the study 9x slower (17.3 s vs 1.9 s for 3 networks) through oversubscription.
    """

    networks: int = 100
    ratios: tuple[float, ...] = DEFAULT_RATIOS
    seed: int = 0
    blocks: tuple[str, ...] = tuple(BLOCKS)
    activations: tuple[str, ...] = tuple(ACTIVATIONS)
    reading: Reading = DEFAULT_READING  # measure, matrix, inputs, N, BN, dtype, d_out range
    device: str = "cpu"
    threads: int | None = (
        1  # torch intra-op threads during the run (restored after); None: leave as is
    )

    def __post_init__(self) -> None:
        if self.networks < 1:
            raise RexbenchError(f"--networks must be at least 1, got {self.networks}")
        if not self.ratios or any(not 0.0 < r <= 1.0 for r in self.ratios):
            raise RexbenchError(f"ratios must lie in (0, 1], got {list(self.ratios)}")
        if self.threads is not None and self.threads < 1:
            raise RexbenchError(f"threads must be at least 1, got {self.threads}")


@dataclass
class StudyResult:
    """Raw ranks of every sampled network; summaries are derived, never stored rounded."""

    config: StudyConfig
    d_out: list[int]  # per network
    ranks: dict[str, dict[str, list[list[float]]]] = field(
        default_factory=dict
    )  # [blk][act][ratio][net]: the reading's measure (an int for rank and rank@RTOL)
    inputs: list[list[float]] = field(default_factory=list)  # [ratio][net]: the measure of X

    def reference(self) -> list[float] | None:
        """Mean measure(X) / d_out per ratio: the input dimension in the measure's own units (the
        paper's "rank is originally bounded to the input dimension"); d_in/d_out for rank."""
        if not self.inputs:
            return None
        return [
            sum(v / d for v, d in zip(per_net, self.d_out, strict=True)) / len(self.d_out)
            for per_net in self.inputs
        ]

    def rank_ratios(self, block: str, act: str) -> list[list[float]]:
        """rank / d_out per ratio (outer) and network (inner)."""
        return [
            [r / d for r, d in zip(per_net, self.d_out, strict=True)]
            for per_net in self.ranks[block][act]
        ]

    def summary(self) -> dict[str, dict[str, dict[str, list[float]]]]:
        """block -> activation -> {mean, std, q10, q90, min, max}: one value per ratio."""
        import numpy as np

        out: dict[str, dict[str, dict[str, list[float]]]] = {}
        for block, per_act in self.ranks.items():
            out[block] = {}
            for act in per_act:
                arr = np.asarray(self.rank_ratios(block, act), dtype=float)  # [ratio, net]
                out[block][act] = {
                    "mean": arr.mean(axis=1).tolist(),
                    "std": arr.std(axis=1).tolist(),
                    "q10": np.quantile(arr, 0.1, axis=1).tolist(),
                    "q90": np.quantile(arr, 0.9, axis=1).tolist(),
                    "min": arr.min(axis=1).tolist(),
                    "max": arr.max(axis=1).tolist(),
                }
        return out

    def curves(self) -> dict[str, dict[str, list[float]]]:
        """block -> activation -> mean rank ratio per ratio: the input of rank_observations."""
        return {b: {a: s["mean"] for a, s in acts.items()} for b, acts in self.summary().items()}

    def to_dict(self) -> dict[str, Any]:
        config = asdict(self.config)
        config["reading"] = self.config.reading.to_dict()
        config["measure"] = self.config.reading.parsed_measure.describe()
        return {
            "study": "rank ratio vs channel dimension ratio (ReXNet paper, section 3.2, Figure 1)",
            "config": config,
            "d_out": self.d_out,
            "summary": self.summary(),
            "ranks": self.ranks,
            "inputs": self.inputs,
            "reference": self.reference(),
        }


def run_study(
    config: StudyConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> StudyResult:
    """Sample `config.networks` networks per block and record the reading's measure of every output.

    `progress(done, total)` is called after each (network, ratio, block) unit.
    """
    cfg = config or StudyConfig()
    return run_measures(cfg, [cfg.reading.parsed_measure], progress)[
        cfg.reading.parsed_measure.name
    ]


def run_measures(
    config: StudyConfig,
    measures: Sequence[Measure],
    progress: Callable[[int, int], None] | None = None,
    networks: Sequence[int] | None = None,
) -> dict[str, StudyResult]:
    """One run, several measures of the same singular values: measure name -> result (whose
    config's reading names that measure).

    `networks`: the indices of the networks to sample (default: all, 0 .. config.networks - 1), in
    the result's order. Network i is seeded by (seed, i) alone, so any split of the indices over
    processes gives the same numbers (rexbench.rank.parallel)."""
    import torch

    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _run(config, measures, progress, networks)
    finally:
        torch.set_num_threads(previous_threads)


def draw_d_out(cfg: StudyConfig, networks: Sequence[int] | None = None) -> list[int]:
    """d_out of each network (default: all), uniform in the reading's range, seeded by (seed, index)."""
    import torch

    lo, hi = cfg.reading.d_out_range
    return [
        int(torch.randint(lo, hi + 1, (1,), generator=_generator(cfg.seed, "d_out", i)))
        for i in (range(cfg.networks) if networks is None else networks)
    ]


def _run(
    cfg: StudyConfig,
    measures: Sequence[Measure],
    progress: Callable[[int, int], None] | None,
    networks: Sequence[int] | None = None,
) -> dict[str, StudyResult]:
    import torch

    indices = list(range(cfg.networks) if networks is None else networks)
    reading, d_outs = cfg.reading, draw_d_out(cfg, indices)
    values = {
        m.name: {
            b: {a: [[0.0] * len(indices) for _ in cfg.ratios] for a in cfg.activations}
            for b in cfg.blocks
        }
        for m in measures
    }
    inputs = {m.name: [[0.0] * len(indices) for _ in cfg.ratios] for m in measures}
    total, done = len(indices) * len(cfg.ratios) * len(cfg.blocks), 0
    with torch.no_grad():
        for at, (net, d_out) in enumerate(zip(indices, d_outs, strict=True)):
            shape = (reading.images(d_out), 0, reading.spatial, reading.spatial)
            for ri, ratio in enumerate(cfg.ratios):
                d_in = input_channels(ratio, d_out)
                gen = _generator(cfg.seed, "x", net, ratio)
                x = make_input(reading, (shape[0], d_in, *shape[2:]), gen).to(cfg.device)
                x_mats = feature_matrices(x.unsqueeze(0), reading, reading.rows(d_out))
                _record(_measured(x_mats, measures, reading), inputs, (ri, at))
                for block in cfg.blocks:
                    gen = _generator(cfg.seed, "w", net, ratio, block)
                    maps = block_maps(block, x, d_out, cfg.activations, gen, reading=reading)
                    mats = feature_matrices(maps, reading, reading.rows(d_out))
                    for name, found in _measured(mats, measures, reading).items():
                        for act, v in zip(cfg.activations, found, strict=True):
                            values[name][block][act][ri][at] = v
                    done += 1
                    if progress is not None:
                        progress(done, total)
    return {
        name: StudyResult(
            config=replace(cfg, reading=replace(reading, measure=name)),
            d_out=d_outs,
            ranks=vals,
            inputs=inputs[name],
        )
        for name, vals in values.items()
    }


def _measured(
    mats: torch.Tensor, measures: Sequence[Measure], reading: Reading
) -> dict[str, list[float]]:
    """(A, M, N, C) matrices -> measure name -> one value per A (mean over the M matrices)."""
    import torch

    sv = torch.linalg.svdvals(mats).cpu()
    out = {}
    for m in measures:
        found = from_singular_values(sv, m, tuple(mats.shape[-2:]), reading.eps).mean(-1).tolist()
        out[m.name] = [round(v) if m.integer else v for v in found]
    return out


def _record(found: dict[str, list[float]], into: dict[str, list[list[float]]], at: tuple) -> None:
    ri, net = at
    for name, (value,) in found.items():
        into[name][ri][net] = value
