"""Blocks shared by every family: channel rounding, conv-BN-activation, squeeze-and-excitation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
    "hardswish": lambda: nn.Hardswish(inplace=True),
    "hardsigmoid": lambda: nn.Hardsigmoid(inplace=True),
    "sigmoid": nn.Sigmoid,
    "elu": lambda: nn.ELU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(inplace=True),
    "softplus": nn.Softplus,
}


def make_act(name: str | None) -> nn.Module | None:
    """An activation module by name, or None for a linear layer."""
    if name is None:
        return None
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}") from None


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round to the nearest multiple of `divisor`, never more than 10% below `value`.

    The TensorFlow/MobileNet rule used by torchvision, timm and the official ReXNet-lite.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_bn_act(
    in_ch: int,
    out_ch: int,
    kernel: int = 1,
    stride: int = 1,
    groups: int = 1,
    act: str | None = "relu",
    bn_eps: float = 1e-5,
    bn_momentum: float = 0.1,
) -> list[nn.Module]:
    """[Conv2d (no bias, 'same' padding for odd kernels), BatchNorm2d, activation?] as a list.

    Returned as a list so a family can splice it flat into its own nn.Sequential (the official
    ReXNet key layout) or wrap it in ConvBNAct (torchvision's Conv2dNormActivation layout).
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch, eps=bn_eps, momentum=bn_momentum),
    ]
    activation = make_act(act)
    if activation is not None:
        layers.append(activation)
    return layers


class ConvBNAct(nn.Sequential):
    """The layers of `conv_bn_act` (same arguments), keyed 0/1/2 like torchvision's
    Conv2dNormActivation."""

    def __init__(self, in_ch: int, out_ch: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*conv_bn_act(in_ch, out_ch, *args, **kwargs))
        self.out_channels = out_ch


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation with 1x1 convs (keys fc1/fc2, like torchvision's SqueezeExcitation).

    pool -> fc1 (bias) -> act -> fc2 (bias) -> gate, then the input is scaled by the gate.
    """

    def __init__(
        self, channels: int, squeeze: int, act: str = "relu", gate: str = "sigmoid"
    ) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = make_act(act)
        self.scale_activation = make_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * scale
