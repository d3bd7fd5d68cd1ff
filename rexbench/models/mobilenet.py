"""MobileNet V1 (timm `mobilenetv1_100`), V2 and V3 (torchvision) from their stage tables.

Each family is a table of rows (a comment names the paper table and the reference code) and one
builder loop; the blocks and the state-dict layouts come from `layouts.py`.
"""

from __future__ import annotations

from torch import nn

from rexbench.models.layers import ConvBNAct, make_divisible
from rexbench.models.layouts import (
    BlockShape,
    DepthwiseSeparable,
    InvertedResidual,
    TimmNet,
    TorchvisionNet,
    init_torchvision,
    inverted_residual_layers,
)

# --- MobileNetV1 -------------------------------------------------------------------------------

# MobileNetV1 paper (Howard et al. 2017) Table 1 as timm's `_gen_mobilenet_v1` arch_def ("dsa" rows):
# (first stride, output channels, repeats); 3x3 depthwise, stem 32, no head conv.
V1_STAGES: tuple[tuple[int, int, int], ...] = (
    (1, 64, 1),
    (2, 128, 2),
    (2, 256, 2),
    (2, 512, 6),
    (2, 1024, 2),
)


def mobilenet_v1(num_classes: int = 1000) -> TimmNet:
    """MobileNetV1 x1.0 as timm's `mobilenetv1_100`: ReLU6 after every conv, no skips, Linear head."""
    stages, in_ch = [], 32
    for stride, out_ch, repeats in V1_STAGES:
        stage: list[nn.Module] = []
        for j in range(repeats):
            stage.append(
                DepthwiseSeparable(
                    in_ch, out_ch, 3, stride if j == 0 else 1, "relu6", pw_act=True, noskip=True
                )
            )
            in_ch = out_ch
        stages.append(stage)
    return TimmNet(32, stages, in_ch, None, num_classes, act="relu6")


# --- MobileNetV2 -------------------------------------------------------------------------------

# MobileNetV2 paper (Sandler et al. 2018) Table 2 = torchvision `MobileNetV2` setting:
# (expand ratio t, output channels c, repeats n, first stride s); stem 32, head 1280.
V2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def mobilenet_v2(width_mult: float = 1.0, num_classes: int = 1000) -> TorchvisionNet:
    """MobileNetV2 as torchvision's `mobilenet_v2(width_mult=...)`: ReLU6, linear bottlenecks,
    channels make_divisible(c * width, 8), head 1280 * max(1, width), Dropout 0.2 + Linear."""
    in_ch = make_divisible(32 * width_mult)
    head = make_divisible(1280 * max(1.0, width_mult))
    features: list[nn.Module] = [ConvBNAct(3, in_ch, 3, 2, act="relu6")]
    for t, c, n, s in V2_STAGES:
        out_ch = make_divisible(c * width_mult)
        for j in range(n):
            stride = s if j == 0 else 1
            mid = int(round(in_ch * t))
            block = BlockShape(in_ch, mid, out_ch, 3, stride)
            layers = inverted_residual_layers(block, act="relu6", flat_project=True)
            features.append(InvertedResidual(layers, block.skip, body="conv"))
            in_ch = out_ch
    features.append(ConvBNAct(in_ch, head, 1, act="relu6"))
    classifier = [nn.Dropout(0.2), nn.Linear(head, num_classes)]
    return init_torchvision(TorchvisionNet(features, classifier, pool_module=False))


# --- MobileNetV3 -------------------------------------------------------------------------------

# MobileNetV3 paper (Howard et al. 2019) Tables 1 and 2 = torchvision `_mobilenet_v3_conf`:
# (kernel, expanded channels, output channels, SE, activation, stride); stem 16 (hardswish).
V3_LARGE: tuple[tuple[int, int, int, bool, str, int], ...] = (
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hardswish", 2),
    (3, 200, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 480, 112, True, "hardswish", 1),
    (3, 672, 112, True, "hardswish", 1),
    (5, 672, 160, True, "hardswish", 2),
    (5, 960, 160, True, "hardswish", 1),
    (5, 960, 160, True, "hardswish", 1),
)
V3_SMALL: tuple[tuple[int, int, int, bool, str, int], ...] = (
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hardswish", 2),
    (5, 240, 40, True, "hardswish", 1),
    (5, 240, 40, True, "hardswish", 1),
    (5, 120, 48, True, "hardswish", 1),
    (5, 144, 48, True, "hardswish", 1),
    (5, 288, 96, True, "hardswish", 2),
    (5, 576, 96, True, "hardswish", 1),
    (5, 576, 96, True, "hardswish", 1),
)
# size -> (rows, classifier hidden width): torchvision `last_channel` 1280 / 1024
V3_CONFIGS = {"large": (V3_LARGE, 1280), "small": (V3_SMALL, 1024)}
V3_BN = {"bn_eps": 1e-3, "bn_momentum": 0.01}  # torchvision MobileNetV3's BatchNorm


def mobilenet_v3(size: str = "large", num_classes: int = 1000) -> TorchvisionNet:
    """MobileNetV3 Large/Small as torchvision's `mobilenet_v3_large` / `mobilenet_v3_small`:
    SE squeeze make_divisible(expanded / 4, 8) with ReLU and hard-sigmoid, head conv 6x the last
    width, classifier Linear -> Hardswish -> Dropout 0.2 -> Linear."""
    if size not in V3_CONFIGS:
        raise ValueError(f"MobileNetV3 size must be one of {', '.join(V3_CONFIGS)}, got {size!r}")
    rows, hidden = V3_CONFIGS[size]
    in_ch = 16
    features: list[nn.Module] = [ConvBNAct(3, in_ch, 3, 2, act="hardswish", **V3_BN)]
    for kernel, mid, out_ch, se, act, stride in rows:
        se_ch = make_divisible(mid // 4) if se else 0
        block = BlockShape(in_ch, mid, out_ch, kernel, stride)
        layers = inverted_residual_layers(
            block, act=act, se_ch=se_ch, se_gate="hardsigmoid", **V3_BN
        )
        features.append(InvertedResidual(layers, block.skip))
        in_ch = out_ch
    features.append(ConvBNAct(in_ch, 6 * in_ch, 1, act="hardswish", **V3_BN))
    classifier = [
        nn.Linear(6 * in_ch, hidden),
        nn.Hardswish(inplace=True),
        nn.Dropout(0.2, inplace=True),
        nn.Linear(hidden, num_classes),
    ]
    return init_torchvision(TorchvisionNet(features, classifier))
