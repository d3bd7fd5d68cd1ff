"""The paper's rank study (section 3.2, Figure 1): rank(f(WX)) / d_out over random-sized networks.

Reading of the paper (section 3.2 "Materials", footnote 2, Figure 1 caption) and the choices it leaves open:

- A network is one building block: (a) a single 1x1 conv, (b) a single 3x3 conv, (c) an inverted
  bottleneck (IB) with a full 3x3 conv inside, (d) an IB with a 3x3 depthwise conv inside.
- Feature f(WX) with W in R^{d_out x d_in}, X in R^{d_in x N}; f is the nonlinearity *with a BN*: each
  conv is followed by BatchNorm (batch statistics, gamma=1, beta=0: PyTorch's initial BN) and then f.
- d_out is sampled at random per network (the paper gives no range: we draw it uniformly from
  `d_out_range`, default 16..96), and d_in = round(ratio * d_out) for each channel dimension ratio
  in [0.1, 1.0]. N = batch x H x W rows with N >= 2 * d_out (the paper only says N > d_out > d_in).
- Inputs X are i.i.d. N(0, 1) on an 8x8 grid (`spatial`); convs are zero-padded ("same"); the rows of
  the feature matrix are all batch x H x W positions. The paper calls N "the batch size"; read
  literally (`spatial=1`), a 3x3 conv on a 1x1 map only uses its centre tap and (b) becomes (a), so the
  default keeps a grid. Consequence: a 3x3 conv sees 9 * d_in numbers per position, so even without a
  nonlinearity its rank is min(9 * d_in, d_out), not d_in; the "none" curve shows this.
- IB (footnote 2; MobileNetV2 block with ReXNet's shortcut): the first 1x1 conv expands d_in -> d_out,
  so its expansion ratio is t = d_out / d_in, the reciprocal of the x-axis ("Observations": "Dimension
  ratio (d_in/d_out) on x-axis denotes the reciprocal of the expansion ratio"). 1x1 d_in -> d_out -> BN
  -> f -> 3x3 conv on d_out (full d_out -> d_out for (c), depthwise for (d)) -> BN -> f -> 1x1
  projection d_out -> d_out -> BN (linear bottleneck, no f), then the input is added onto the first
  d_in output channels (ReXNet's partial shortcut, since d_in <= d_out). The studied f replaces both
  activations of the block. Input = input of the first 1x1 conv, output = after the addition (footnote
  2). Without f the output spans at most the 9 * d_in zero-padded 3x3 patches of the centred input plus
  the constant column the shortcut brings: rank <= min(9 * d_in + 1, d_out).
- rank ratio = rank / d_out of the (N, d_out) output matrix, averaged over networks; the spread over
  networks (std, 10th and 90th percentiles) is kept, and so are the raw ranks.

Common random numbers: network i has one d_out; for each ratio it has one input X, shared by every block,
and per block one set of weights, shared by every nonlinearity. So curves differ only by what they name,
and a study restricted to some blocks or activations reproduces the full study's numbers for them.

Rank tolerance: see `default_rtol`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    import torch

# block key -> (letter in Figure 1, label)
BLOCKS: dict[str, tuple[str, str]] = {
    "conv1x1": ("a", "(a) single 1x1 conv"),
    "conv3x3": ("b", "(b) single 3x3 conv"),
    "ib_conv3x3": ("c", "(c) inverted bottleneck, 3x3 conv"),
    "ib_dw3x3": ("d", "(d) inverted bottleneck, 3x3 depthwise conv"),
}
SINGLE_BLOCKS = ("conv1x1", "conv3x3")
IB_BLOCKS = ("ib_conv3x3", "ib_dw3x3")

# activation key -> label; order of the paper's footnote 1, then the linear reference
ACTIVATIONS: dict[str, str] = {
    "relu": "ReLU",
    "relu6": "ReLU6",
    "leaky_relu": "LeakyReLU",
    "elu": "ELU",
    "softplus": "SoftPlus",
    "hardswish": "HardSwish",
    "silu": "SiLU",
    "none": "none",  # the linear reference
}
_ACT_ALIASES = {"leakyrelu": "leaky_relu", "swish": "silu", "hswish": "hardswish", "linear": "none"}

DEFAULT_RATIOS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))
FP32_EPS = 2.0**-23  # torch.finfo(torch.float32).eps


def default_rtol(rows: int, cols: int) -> float:
    """max(rows, cols) * eps(float32): torch.linalg.matrix_rank's own default for a float32 matrix.

    Stated explicitly so that the rank does not change with the dtype the SVD runs in. Measured on
    this study's outputs (fp32 forward, d_out 16..96, N = 64..192 rows): singular values that are zero
    in exact arithmetic (linear 1x1 outputs beyond d_in: at most 3.5e-7 * sigma_max over 20 networks x
    10 ratios) sit 20-65x below this tolerance (7.6e-6..2.3e-5 * sigma_max), so it separates fp32
    noise from rank. Smooth nonlinearities (SoftPlus, SiLU, ELU) leave genuine but decaying singular values
    (down to ~1e-4 * sigma_max at small d_in), so a looser tolerance lowers their rank: the measured
    rank is a property of the tolerance as much as of the layer. `rtol` in `run_study` changes it.
    """
    return max(rows, cols) * FP32_EPS


def matrix_rank(features: torch.Tensor, rtol: float | None = None) -> torch.Tensor:
    """Rank of a (..., rows, cols) matrix (or batch) with tolerance rtol * sigma_max.

    rtol=None means `default_rtol(rows, cols)`.
    """
    import torch

    rows, cols = features.shape[-2:]
    tol = default_rtol(rows, cols) if rtol is None else rtol
    return torch.linalg.matrix_rank(features, rtol=tol)


def resolve_blocks(names: Sequence[str] | None) -> tuple[str, ...]:
    """Block keys from names or Figure 1 letters ('a'..'d'); None means all four."""
    if not names:
        return tuple(BLOCKS)
    by_letter = {letter: key for key, (letter, _) in BLOCKS.items()}
    out: list[str] = []
    for name in names:
        key = by_letter.get(name.strip().lower(), name.strip().lower())
        if key not in BLOCKS:
            known = ", ".join(f"{k} ({v[0]})" for k, v in BLOCKS.items())
            raise RexbenchError(f"unknown block {name!r}; known: {known}")
        if key not in out:
            out.append(key)
    return tuple(out)


def resolve_activations(names: Sequence[str] | None) -> tuple[str, ...]:
    """Activation keys from names (case and '-'/'_' folded); None means all eight."""
    if not names:
        return tuple(ACTIVATIONS)
    folded = {k.replace("_", ""): k for k in ACTIVATIONS} | _ACT_ALIASES
    out: list[str] = []
    for name in names:
        key = folded.get(name.strip().lower().replace("-", "").replace("_", ""))
        if key is None:
            raise RexbenchError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
        if key not in out:
            out.append(key)
    return tuple(out)


@dataclass(frozen=True)
class StudyConfig:
    """What to sample; the paper uses 1,000 networks. The defaults (100 networks) cost 50 s of CPU
    (2 min 20 s wall on the shared, loaded 2-core machine).

    `threads=1`: these matrices are small, and on a shared 2-core machine two intra-op threads made
    the study 9x slower (17.3 s vs 1.9 s for 3 networks) through oversubscription.
    """

    networks: int = 100
    ratios: tuple[float, ...] = DEFAULT_RATIOS
    seed: int = 0
    blocks: tuple[str, ...] = tuple(BLOCKS)
    activations: tuple[str, ...] = tuple(ACTIVATIONS)
    d_out_range: tuple[int, int] = (16, 96)  # inclusive; not given by the paper
    rows_per_channel: int = 2  # N >= rows_per_channel * d_out
    spatial: int = 8  # H = W of the input grid
    rtol: float | None = None  # None: default_rtol (torch's fp32 default)
    device: str = "cpu"
    threads: int | None = (
        1  # torch intra-op threads during the run (restored after); None: leave as is
    )

    def __post_init__(self) -> None:
        if self.networks < 1:
            raise RexbenchError(f"--networks must be at least 1, got {self.networks}")
        if not self.ratios or any(not 0.0 < r <= 1.0 for r in self.ratios):
            raise RexbenchError(f"ratios must lie in (0, 1], got {list(self.ratios)}")
        lo, hi = self.d_out_range
        if not 2 <= lo <= hi:
            raise RexbenchError(f"d_out range must satisfy 2 <= min <= max, got {lo}..{hi}")
        if self.rows_per_channel < 2 or self.spatial < 1:
            raise RexbenchError("rows_per_channel >= 2 and spatial >= 1 required")
        if self.threads is not None and self.threads < 1:
            raise RexbenchError(f"threads must be at least 1, got {self.threads}")
        if self.rtol is not None and not 0.0 < self.rtol < 1.0:
            raise RexbenchError(f"rtol must lie in (0, 1), got {self.rtol}")


@dataclass
class StudyResult:
    """Raw ranks of every sampled network; summaries are derived, never stored rounded."""

    config: StudyConfig
    d_out: list[int]  # per network
    ranks: dict[str, dict[str, list[list[int]]]] = field(
        default_factory=dict
    )  # [blk][act][ratio][net]

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
        config["rtol_rule"] = (
            "max(rows, cols) * eps(float32)" if self.config.rtol is None else "fixed"
        )
        return {
            "study": "rank ratio vs channel dimension ratio (ReXNet paper, section 3.2, Figure 1)",
            "config": config,
            "d_out": self.d_out,
            "summary": self.summary(),
            "ranks": self.ranks,
        }


def input_channels(ratio: float, d_out: int) -> int:
    """d_in = round(ratio * d_out), at least 1."""
    return max(1, round(ratio * d_out))


def _generator(seed: int, *keys: object) -> torch.Generator:
    """A CPU generator seeded from (seed, keys) by hashing: independent of which blocks are run."""
    import torch

    digest = hashlib.blake2b(repr((seed, *keys)).encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


def _activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    import torch.nn.functional as F

    table: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "relu": F.relu,
        "relu6": F.relu6,
        "leaky_relu": F.leaky_relu,  # slope 0.01
        "elu": F.elu,  # alpha 1
        "softplus": F.softplus,  # beta 1
        "hardswish": F.hardswish,
        "silu": F.silu,
        "none": lambda x: x,
    }
    return table[name]


def _weight(gen: torch.Generator, out_ch: int, in_ch: int, k: int, device: str) -> torch.Tensor:
    """He-style N(0, 1/fan_in) weights; the scale does not matter since BN follows every conv."""
    import torch

    w = torch.randn(out_ch, in_ch, k, k, generator=gen) / math.sqrt(in_ch * k * k)
    return w.to(device)


def _bn(x: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return F.batch_norm(x, None, None, training=True)


def block_outputs(
    block: str,
    x: torch.Tensor,
    d_out: int,
    activations: Sequence[str],
    gen: torch.Generator,
) -> torch.Tensor:
    """Outputs of one random block for every activation, as an (activations, N, d_out) stack."""
    import torch
    import torch.nn.functional as F

    d_in, device = x.shape[1], str(x.device)
    acts = [_activation(a) for a in activations]
    if block in SINGLE_BLOCKS:
        k = 1 if block == "conv1x1" else 3
        pre = _bn(F.conv2d(x, _weight(gen, d_out, d_in, k, device), padding=k // 2))
        outs = [f(pre) for f in acts]
    elif block in IB_BLOCKS:
        # the first 1x1 expands d_in -> d_out: expansion ratio t = d_out / d_in
        groups = d_out if block == "ib_dw3x3" else 1
        w_exp = _weight(gen, d_out, d_in, 1, device)
        w_mid = _weight(gen, d_out, d_out // groups, 3, device)
        w_proj = _weight(gen, d_out, d_out, 1, device)
        expanded = _bn(F.conv2d(x, w_exp))
        outs = []
        for f in acts:
            h = f(_bn(F.conv2d(f(expanded), w_mid, padding=1, groups=groups)))
            y = _bn(F.conv2d(h, w_proj))
            y[:, :d_in] += x  # ReXNet's partial shortcut (footnote 2: output after the addition)
            outs.append(y)
    else:
        raise RexbenchError(f"unknown block {block!r}")
    stacked = torch.stack(outs)  # (A, B, d_out, H, W)
    return stacked.permute(0, 1, 3, 4, 2).reshape(len(acts), -1, d_out)


def run_study(
    config: StudyConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> StudyResult:
    """Sample `config.networks` networks per block and record the rank of every output.

    `progress(done, total)` is called after each (network, ratio, block) unit.
    """
    import torch

    cfg = config or StudyConfig()
    previous_threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _run(cfg: StudyConfig, progress: Callable[[int, int], None] | None) -> StudyResult:
    import torch

    lo, hi = cfg.d_out_range
    d_outs = [
        int(torch.randint(lo, hi + 1, (1,), generator=_generator(cfg.seed, "d_out", i)))
        for i in range(cfg.networks)
    ]
    ranks = {
        b: {a: [[0] * cfg.networks for _ in cfg.ratios] for a in cfg.activations}
        for b in cfg.blocks
    }
    total, done = cfg.networks * len(cfg.ratios) * len(cfg.blocks), 0
    with torch.no_grad():
        for net, d_out in enumerate(d_outs):
            area = cfg.spatial * cfg.spatial
            batch = math.ceil(cfg.rows_per_channel * d_out / area)
            for ri, ratio in enumerate(cfg.ratios):
                d_in = input_channels(ratio, d_out)
                gen = _generator(cfg.seed, "x", net, ratio)
                x = torch.randn(batch, d_in, cfg.spatial, cfg.spatial, generator=gen).to(cfg.device)
                for block in cfg.blocks:
                    gen = _generator(cfg.seed, "w", net, ratio, block)
                    out = block_outputs(block, x, d_out, cfg.activations, gen)
                    found = matrix_rank(out, cfg.rtol).tolist()
                    for act, rank in zip(cfg.activations, found, strict=True):
                        ranks[block][act][ri][net] = int(rank)
                    done += 1
                    if progress is not None:
                        progress(done, total)
    return StudyResult(config=cfg, d_out=d_outs, ranks=ranks)
