"""The random building blocks of the rank study (paper section 3.2, Figure 1) and their names.

(a) a single 1x1 conv, (b) a single 3x3 conv, (c) an inverted bottleneck (IB) with a full 3x3 conv
inside, (d) an IB with a 3x3 depthwise conv inside; each with one of the paper's seven nonlinearities
(footnote 1) or none. Every conv is zero-padded ("same"); its BN sits where the `Reading` says.

IB (footnote 2; MobileNetV2 block with ReXNet's shortcut): the first 1x1 conv expands d_in -> d_out,
so its expansion ratio is t = d_out / d_in, the reciprocal of the x-axis ("Dimension ratio (d_in/d_out)
on x-axis denotes the reciprocal of the expansion ratio"). 1x1 d_in -> d_out -> BN -> f -> 3x3 conv on
d_out (full for (c), depthwise for (d)) -> BN -> f -> 1x1 projection d_out -> d_out -> BN (linear
bottleneck, no f), then the input is added onto the first d_in output channels (ReXNet's partial
shortcut). The studied f replaces both activations of the block. Input = input of the first 1x1 conv,
output = after the addition (footnote 2). Without f, and with batch-statistics BN before f, the output
spans at most the 9 x d_in zero-padded 3x3 patches of the centred input plus the constant column the
shortcut brings: rank <= min(9 x d_in + 1, d_out).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rexbench.errors import RexbenchError
from rexbench.rank.readings import DEFAULT_READING, Reading, feature_matrices, normalize

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


def _weight(
    gen: torch.Generator, shape: tuple[int, int, int], like: torch.Tensor, init: str = "he"
) -> torch.Tensor:
    """Conv weights (out, in, k x k) as the reading's `init` says: he N(0, 1/fan_in), torch
    U(+-1/sqrt(fan_in)) or normal N(0, 1). Drawn in fp32 whatever the reading's dtype, so that fp32
    and fp64 readings share their networks."""
    import torch

    out_ch, in_ch, k = shape
    fan_in = in_ch * k * k
    if init == "torch":
        w = (torch.rand(out_ch, in_ch, k, k, generator=gen) * 2 - 1) / math.sqrt(fan_in)
    else:
        w = torch.randn(out_ch, in_ch, k, k, generator=gen)
        w = w / math.sqrt(fan_in) if init == "he" else w
    return w.to(device=like.device, dtype=like.dtype)


def _act_bn(z: torch.Tensor, f: Callable, reading: Reading) -> torch.Tensor:
    """f with its BN, where the reading puts it: f(BN(z)), BN(f(z)) or f(z)."""
    if reading.bn == "pre":
        return f(normalize(z, reading))
    if reading.bn == "post":
        return normalize(f(z), reading)
    return f(z)


def block_maps(
    block: str,
    x: torch.Tensor,
    d_out: int,
    activations: Sequence[str],
    gen: torch.Generator,
    *,
    reading: Reading = DEFAULT_READING,
) -> torch.Tensor:
    """Outputs of one random block for every activation, as an (A, B, d_out, H, W) stack."""
    import torch
    import torch.nn.functional as F

    d_in = x.shape[1]
    acts = [_activation(a) for a in activations]
    if block in SINGLE_BLOCKS:
        k = 1 if block == "conv1x1" else 3
        z = F.conv2d(x, _weight(gen, (d_out, d_in, k), x, reading.init), padding=k // 2)
        return torch.stack([_act_bn(z, f, reading) for f in acts])
    if block not in IB_BLOCKS:
        raise RexbenchError(f"unknown block {block!r}")
    # the first 1x1 expands d_in -> d_out: expansion ratio t = d_out / d_in
    groups = d_out if block == "ib_dw3x3" else 1
    w_exp = _weight(gen, (d_out, d_in, 1), x, reading.init)
    w_mid = _weight(gen, (d_out, d_out // groups, 3), x, reading.init)
    w_proj = _weight(gen, (d_out, d_out, 1), x, reading.init)
    expanded = F.conv2d(x, w_exp)
    outs = []
    for f in acts:
        h = _act_bn(expanded, f, reading)
        h = _act_bn(F.conv2d(h, w_mid, padding=1, groups=groups), f, reading)
        y = F.conv2d(h, w_proj)  # linear bottleneck: BN, no f
        y = y if reading.bn == "none" else normalize(y, reading)
        y[:, :d_in] += x  # ReXNet's partial shortcut (footnote 2: output after the addition)
        outs.append(y)
    return torch.stack(outs)


def block_outputs(
    block: str,
    x: torch.Tensor,
    d_out: int,
    activations: Sequence[str],
    gen: torch.Generator,
    *,
    reading: Reading = DEFAULT_READING,
) -> torch.Tensor:
    """The block's feature matrices as the reading takes them, every row kept: (A, N, d_out) for
    `positions` and `pooled`, (A, H, N, d_out) for `per-position`."""
    maps = block_maps(block, x, d_out, activations, gen, reading=reading)
    mats = feature_matrices(maps, reading)
    return mats[:, 0] if mats.shape[1] == 1 else mats
