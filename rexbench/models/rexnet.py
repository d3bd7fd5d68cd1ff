"""ReXNet v1, ReXNet-lite and ReXNet (plain): channel-configuration functions plus one builder loop.

v1 and lite reproduce the official clovaai code (`rexnetv1.py`, `rexnetv1_lite.py`) exactly: same
channels (same float operations, Python's round-half-to-even), same layers and the same state-dict
keys (`features.N.out.M...`, `output.M...`), so an official checkpoint loads without any mapping.
Facts: the official clovaai ReXNetV1 / ReXNetV1_lite code; paper section 4.4, Tables 5, A1, A2.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import torch
from torch import nn

from rexbench.models.layers import conv_bn_act, make_act, make_divisible

# Official stage table (rexnetv1.py / rexnetv1_lite.py): blocks, first stride, expansion t, SE.
STAGES: tuple[tuple[int, int, int, bool], ...] = (
    (1, 1, 1, False),
    (2, 2, 6, False),
    (2, 2, 6, True),
    (3, 2, 6, True),
    (3, 1, 6, True),
    (5, 2, 6, True),
)
SE_RATIO = 12  # official `se_ratio`: an integer divisor of the expanded width


@dataclass(frozen=True)
class BlockCfg:
    """One block: in/out channels, expansion, stride, SE on/off, depthwise kernel."""

    in_ch: int
    out_ch: int
    t: int
    stride: int
    se: bool = False
    kernel: int = 3


@dataclass(frozen=True)
class NetCfg:
    """A whole network: stem width, the block rows, penultimate width."""

    stem: int
    blocks: tuple[BlockCfg, ...]
    pen: int


def _stage_rows(depth_mult: float = 1.0) -> list[tuple[int, int, bool]]:
    """Per-block (stride, t, se) from STAGES; block counts rounded up by `ceil(n * depth_mult)`."""
    rows = []
    for count, stride, t, se in STAGES:
        n = ceil(count * depth_mult)
        rows += [(stride, t, se)] + [(1, t, se)] * (n - 1)
    return rows


def rexnet_config(width_mult: float = 1.0, depth_mult: float = 1.0, final_ch: int = 180) -> NetCfg:
    """Official ReXNetV1 channels (rexnetv1.py): a running float sum of final_ch / n, times width, round().

    Below x1.0 the stem (32) and first output (16) are divided by the width first, so they stay 32/16.
    `round` is Python's (half to even): x1.0 gives 38 and 128, not 39 and 129 (as the official code computes it).
    """
    rows = _stage_rows(depth_mult)
    n = len(rows)
    stem_base = 32 / width_mult if width_mult < 1.0 else 32
    base = 16 / width_mult if width_mult < 1.0 else 16
    stem = int(round(stem_base * width_mult))
    blocks, in_ch = [], stem
    for i, (stride, t, se) in enumerate(rows):
        if i > 0:
            base += final_ch / (n * 1.0)
        out_ch = int(round(base * width_mult))
        blocks.append(BlockCfg(in_ch, out_ch, t, stride, se))
        in_ch = out_ch
    return NetCfg(stem, tuple(blocks), int(1280 * width_mult))


def rexnet_lite_config(multiplier: float = 1.0, final_ch: int = 164, divisor: int = 8) -> NetCfg:
    """Official ReXNetV1_lite channels (rexnetv1_lite.py): increment final_ch / (n - 1), round, then
    make divisible by 8; no SE; penultimate int(1280 * m) only above x1.0 (official ReXNetV1_lite)."""
    rows = _stage_rows()
    n = len(rows)
    stem_base = 32 / multiplier if multiplier < 1.0 else 32
    base = 16 / multiplier if multiplier < 1.0 else 16
    stem = make_divisible(int(round(stem_base * multiplier)), divisor)
    blocks, in_ch = [], stem
    for i, (stride, t, _se) in enumerate(rows):
        if i > 0:
            base += final_ch / (n - 1 * 1.0)
        out_ch = make_divisible(int(round(base * multiplier)), divisor)
        blocks.append(BlockCfg(in_ch, out_ch, t, stride, se=False))
        in_ch = out_ch
    return NetCfg(stem, tuple(blocks), int(1280 * multiplier) if multiplier > 1 else 1280)


# ReXNet (plain): MobileNetV1's 13 depthwise-separable blocks and strides (Howard et al. 2017, Table 1).
PLAIN_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)
PLAIN_FIRST, PLAIN_LAST = 136, 520  # linear 1x1 output channels: see rexnet_plain()


def rexnet_plain_config(first: int = PLAIN_FIRST, last: int = PLAIN_LAST) -> NetCfg:
    """Plain channels: the 13 pointwise outputs rise linearly from `first` to `last`, Python round()."""
    n = len(PLAIN_STRIDES)
    blocks, in_ch = [], 32
    for i, stride in enumerate(PLAIN_STRIDES):
        out_ch = int(round(first + (last - first) * i / (n - 1)))
        blocks.append(BlockCfg(in_ch, out_ch, 1, stride))
        in_ch = out_ch
    return NetCfg(32, tuple(blocks), 1280)


class SE(nn.Module):
    """Official ReXNet SE: pool -> 1x1 conv (bias) -> BN -> ReLU -> 1x1 conv (bias) -> sigmoid gate.

    Keys `fc.0`, `fc.1` (BN), `fc.3` as in rexnetv1.py.
    """

    def __init__(self, channels: int, ratio: int = SE_RATIO) -> None:
        super().__init__()
        mid = channels // ratio
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Conv2d(channels, mid, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(self.avg_pool(x))


class LinearBottleneck(nn.Module):
    """Inverted bottleneck with the partial residual of ReXNet (v1 and lite).

    out = [1x1 expand, BN, exp_act]? -> dw kxk, BN -> SE? -> ReLU6 -> 1x1 project, BN (linear).
    Shortcut when stride 1 and in <= out: the input is added onto the first `in` output channels
    (the paper's zero-padded shortcut). Written with cat instead of the official in-place slice add,
    so it is safe for autograd and torch.compile; the values are identical.
    """

    def __init__(self, cfg: BlockCfg, exp_act: str) -> None:
        super().__init__()
        self.in_channels, self.out_channels = cfg.in_ch, cfg.out_ch
        self.use_shortcut = cfg.stride == 1 and cfg.in_ch <= cfg.out_ch
        dw = cfg.in_ch * cfg.t
        layers: list[nn.Module] = []
        if cfg.t != 1:
            layers += conv_bn_act(cfg.in_ch, dw, act=exp_act)
        layers += conv_bn_act(dw, dw, cfg.kernel, cfg.stride, groups=dw, act=None)
        if cfg.se:
            layers.append(SE(dw))
        layers.append(nn.ReLU6())
        layers += conv_bn_act(dw, cfg.out_ch, act=None)
        self.out = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.out(x)
        if not self.use_shortcut:
            return out
        if self.in_channels == self.out_channels:
            return out + x
        return torch.cat([out[:, : self.in_channels] + x, out[:, self.in_channels :]], dim=1)


class PlainBlock(nn.Module):
    """ReXNet (plain) block: MobileNetV1's depthwise-separable pair, dw kxk-BN-ReLU then 1x1-BN-SiLU."""

    def __init__(self, cfg: BlockCfg) -> None:
        super().__init__()
        self.in_channels, self.out_channels = cfg.in_ch, cfg.out_ch
        self.out = nn.Sequential(
            *conv_bn_act(
                cfg.in_ch, cfg.in_ch, cfg.kernel, cfg.stride, groups=cfg.in_ch, act="relu"
            ),
            *conv_bn_act(cfg.in_ch, cfg.out_ch, act="silu"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x)


class ReXNet(nn.Module):
    """`features` (stem, blocks, penultimate 1x1, global pool) then `output` (head) and flatten(1)."""

    def __init__(self, features: list[nn.Module], output: list[nn.Module]) -> None:
        super().__init__()
        self.features = nn.Sequential(*features)
        self.output = nn.Sequential(*output)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, before global pooling (official `extract_features`)."""
        return self.features[:-1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x)).flatten(1)


def _build(cfg: NetCfg, kind: str, stem_act: str, pen_act: str, head: list[nn.Module]) -> ReXNet:
    """The one builder loop: stem, a block per config row, penultimate 1x1, pool; then the head."""
    features = conv_bn_act(3, cfg.stem, 3, 2, act=stem_act)
    for block in cfg.blocks:
        if kind == "plain":
            features.append(PlainBlock(block))
        else:
            features.append(LinearBottleneck(block, exp_act="silu" if kind == "v1" else "relu6"))
    features += conv_bn_act(cfg.blocks[-1].out_ch, cfg.pen, act=pen_act)
    features.append(nn.AdaptiveAvgPool2d(1))
    return ReXNet(features, head)


def rexnet(
    width_mult: float = 1.0,
    num_classes: int = 1000,
    depth_mult: float = 1.0,
    dropout: float = 0.2,
) -> ReXNet:
    """ReXNet v1 = official `ReXNetV1(width_mult=...)`: SiLU stem/expansion/penultimate, SE with BN
    from stage 3 on, ReLU6 after SE, Dropout + 1x1-conv classifier (paper Tables 5 and A1)."""
    cfg = rexnet_config(width_mult, depth_mult)
    head = [nn.Dropout(dropout), nn.Conv2d(cfg.pen, num_classes, 1)]
    return _build(cfg, "v1", stem_act="silu", pen_act="silu", head=head)


def rexnet_lite(multiplier: float = 1.0, num_classes: int = 1000, dropout: float = 0.2) -> ReXNet:
    """ReXNet-lite = official `ReXNetV1_lite(multiplier=...)`: ReLU6 everywhere, no SE, channels
    divisible by 8, head 1x1 conv -> 1024 -> BN -> ReLU6 -> Dropout -> 1x1 conv (paper Table A2).

    The official model pools in a separate `avgpool`; here the pool is the last element of
    `features` (no parameters, so the state-dict keys are the same)."""
    cfg = rexnet_lite_config(multiplier)
    head = [
        nn.Conv2d(cfg.pen, 1024, 1),
        nn.BatchNorm2d(1024),
        make_act("relu6"),
        nn.Dropout(dropout),
        nn.Conv2d(1024, num_classes, 1),
    ]
    return _build(cfg, "lite", stem_act="relu6", pen_act="relu6", head=head)


def rexnet_plain(num_classes: int = 1000, dropout: float = 0.2) -> ReXNet:
    """ReXNet (plain), reconstructed from the paper (section 4.4, Appendix B.2, Table A1); there is
    no public code, so this is our reading, not a reference implementation.

    Reading: MobileNetV1 unchanged in depth and layout - stem 3x3 conv stride 2 -> 32, BN, ReLU
    ("identical configuration at the stem"), then MobileNetV1's 13 depthwise-separable blocks with
    its strides 1,2,1,2,1,2,1,1,1,1,1,2,1 (total stride 32). Only the 1x1 output channels are
    reassigned, linearly in the block index as in section 4.4; SiLU follows every 1x1 conv and
    ReLU stays after every depthwise conv; no SE, no skip connections. Then the large expansion
    layer kept from ReXNet, a 1x1 conv -> 1280, BN, SiLU (a 1x1 conv, so SiLU), global pool and
    the ReXNet head (Dropout 0.2, 1x1-conv classifier).

    Channel schedule: out_i = 136 + 32 * i for i = 0..12 (136, 168, ..., 488, 520; every one a
    multiple of 8). Table A1 fixes two numbers, params 3.4M and FLOPs 0.56B, so the two free ends
    of the line were solved for on a grid of multiples of 8 (first, last), keeping the pair whose
    worse relative error is smallest: 3,438,872 params (+1.1%) and 558,998,000 conv MACs (-0.2%)
    at 224x224. Neighbours: 144..504 gives -0.9% / +1.6%, 136..512 gives -0.3% / -1.7%. Keeping
    MobileNetV1's 64 as the first output cannot reach both targets (64..552: 3.41M but 0.38B).
    """
    cfg = rexnet_plain_config()
    head = [nn.Dropout(dropout), nn.Conv2d(cfg.pen, num_classes, 1)]
    return _build(cfg, "plain", stem_act="relu", pen_act="silu", head=head)
