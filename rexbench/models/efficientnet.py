"""EfficientNet B0-B3 (torchvision) and EfficientNet-lite0-3 (timm) from one stage table.

Both scale the same B0 baseline (EfficientNet paper, Tan & Le 2019, Table 1) with the same compound
multipliers; they differ in activation, SE, fixed stem/head and the state-dict layout:
- B0-B3 = torchvision `efficientnet_b0..b3`: SiLU, SE on every block (squeeze = block input // 4),
  stem and head scaled, stochastic depth 0.2 * block / blocks, default BatchNorm (eps 1e-5).
- lite0-3 = timm `efficientnet_lite0` / `tf_efficientnet_lite1..3`: ReLU6, no SE, stem 32 and head
  1280 fixed, first and last stage depths fixed. Symmetric padding (not TF "same"): at the default
  resolutions the shapes, params and MACs are the same (tests/data/reference_counts.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from torch import nn

from rexbench.models.layers import ConvBNAct, make_divisible
from rexbench.models.layouts import (
    BlockShape,
    DepthwiseSeparable,
    InvertedResidual,
    TimmInvertedResidual,
    TimmNet,
    TorchvisionNet,
    init_torchvision,
    inverted_residual_layers,
)

# B0 baseline, EfficientNet paper Table 1 (= torchvision `_efficientnet_conf`, timm arch_def):
# (expand ratio, kernel, first stride, output channels, repeats); the stem has 32 channels.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM = 32

# Compound scaling (width, depth, dropout) of B0..B3, EfficientNet paper section 3.3; the same
# numbers in torchvision `efficientnet_b0..b3` and timm `_gen_efficientnet_lite` (lite0..3).
SCALING: tuple[tuple[float, float, float], ...] = (
    (1.0, 1.0, 0.2),
    (1.0, 1.1, 0.2),
    (1.1, 1.2, 0.3),
    (1.2, 1.4, 0.3),
)
STOCHASTIC_DEPTH = 0.2  # torchvision EfficientNet `stochastic_depth_prob`
LITE_HEAD = 1280  # timm `_gen_efficientnet_lite(num_features=1280)`, not scaled
LITE_BN_EPS = (1e-5, 1e-3, 1e-3, 1e-3)  # timm efficientnet_lite0; tf_efficientnet_lite1..3 (TF eps)


@dataclass(frozen=True)
class MBConvCfg(BlockShape):
    """One block of the stage table: its shape and the expand ratio of its row."""

    expand: int


def block_configs(
    width: float, depth: float, stem_ch: int, fix_ends: bool = False
) -> list[list[MBConvCfg]]:
    """The scaled blocks, stage by stage.

    Channels: make_divisible(c * width, 8); expanded width make_divisible(in * t, 8). Repeats:
    ceil(n * depth), except the first and last stage when `fix_ends` (timm lite's fix_first_last).
    """
    stages, in_ch = [], stem_ch
    for i, (t, k, s, c, n) in enumerate(STAGES):
        out_ch = make_divisible(c * width)
        repeats = n if fix_ends and i in (0, len(STAGES) - 1) else int(ceil(n * depth))
        stage = []
        for j in range(repeats):
            mid_ch = make_divisible(in_ch * t)
            stride = s if j == 0 else 1
            stage.append(MBConvCfg(in_ch, mid_ch, out_ch, kernel=k, stride=stride, expand=t))
            in_ch = out_ch
        stages.append(stage)
    return stages


def _scaling(index: int) -> tuple[float, float, float]:
    if index not in range(len(SCALING)):
        raise ValueError(f"EfficientNet index must be 0..{len(SCALING) - 1}, got {index}")
    return SCALING[index]


def efficientnet_b(index: int, num_classes: int = 1000) -> TorchvisionNet:
    """EfficientNet-B`index` (0-3) exactly as torchvision's `efficientnet_b{index}` builds it."""
    width, depth, dropout = _scaling(index)
    stem = make_divisible(STEM * width)
    stages = block_configs(width, depth, stem)
    total = sum(len(stage) for stage in stages)
    features: list[nn.Module] = [ConvBNAct(3, stem, 3, 2, act="silu")]
    done = 0
    for stage in stages:
        blocks = []
        for cfg in stage:
            se_ch = max(1, cfg.in_ch // 4)
            layers = inverted_residual_layers(
                cfg, act="silu", se_ch=se_ch, se_act="silu", se_gate="sigmoid"
            )
            blocks.append(InvertedResidual(layers, cfg.skip, STOCHASTIC_DEPTH * done / total))
            done += 1
        features.append(nn.Sequential(*blocks))
    last = stages[-1][-1].out_ch
    features.append(ConvBNAct(last, 4 * last, 1, act="silu"))
    classifier = [nn.Dropout(dropout, inplace=True), nn.Linear(4 * last, num_classes)]
    return init_torchvision(TorchvisionNet(features, classifier), linear="uniform")


def efficientnet_lite(index: int, num_classes: int = 1000) -> TimmNet:
    """EfficientNet-lite`index` (0-3) as timm builds `efficientnet_lite0` / `tf_efficientnet_lite1..3`,
    with symmetric padding; BatchNorm eps as timm's (1e-3 for the tf_ models, whose weights expect it)."""
    width, depth, _dropout = _scaling(index)
    eps = LITE_BN_EPS[index]
    cfgs = block_configs(width, depth, STEM, fix_ends=True)
    stages = []
    for stage in cfgs:
        blocks: list[nn.Module] = []
        for c in stage:
            if c.expand == 1:  # timm "ds" row: depthwise-separable, linear pointwise
                blocks.append(
                    DepthwiseSeparable(c.in_ch, c.out_ch, c.kernel, c.stride, "relu6", bn_eps=eps)
                )
            else:
                blocks.append(TimmInvertedResidual(c, act="relu6", bn_eps=eps))
        stages.append(blocks)
    return TimmNet(
        STEM, stages, cfgs[-1][-1].out_ch, LITE_HEAD, num_classes, act="relu6", bn_eps=eps
    )
