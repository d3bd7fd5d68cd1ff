"""Blocks and network shells in the two state-dict layouts the baselines must reproduce.

torchvision layout (EfficientNet B0-B3, MobileNetV2, MobileNetV3): `features.N...` built from
`ConvBNAct` (Conv2dNormActivation keys 0/1/2), inverted residuals whose body is a Sequential named
`block` (MBConv, V3) or `conv` (V2), then `avgpool` and a `classifier` Sequential.

timm layout (EfficientNet-lite, MobileNetV1; timm `_efficientnet_blocks.py`): `conv_stem`, `bn1`,
`blocks.S.B` with `conv_pw/bn1/conv_dw/bn2/conv_pwl/bn3` or `conv_dw/bn1/conv_pw/bn2`, optional
`conv_head`/`bn2`, then `global_pool` and a Linear `classifier`. BatchNorm carries its activation
(timm's BatchNormAct2d), so a `bnN` key holds exactly the BatchNorm tensors.

Same modules in the same order as the references, so their checkpoints load with no key mapping and
fvcore/thop see the same operators.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from rexbench.models.layers import ConvBNAct, SqueezeExcitation, conv_bn_act, make_act

# --- shared ----------------------------------------------------------------------------------


class DropPath(nn.Module):
    """Stochastic depth per sample (torchvision `StochasticDepth(p, "row")`); identity in eval."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        noise = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * noise.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


@dataclass(frozen=True)
class BlockShape:
    """One inverted-residual block: channels in / expanded / out, depthwise kernel and stride."""

    in_ch: int
    mid_ch: int
    out_ch: int
    kernel: int
    stride: int

    @property
    def skip(self) -> bool:
        """Whether the block adds its input: stride 1 and as many channels out as in."""
        return self.stride == 1 and self.in_ch == self.out_ch


def _conv(in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """Bias-free conv with symmetric padding (k - 1) // 2, as both references pad odd kernels."""
    return nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)


# --- torchvision layout ----------------------------------------------------------------------


def inverted_residual_layers(
    block: BlockShape,
    act: str,
    se_ch: int = 0,
    se_act: str = "relu",
    se_gate: str = "sigmoid",
    bn_eps: float = 1e-5,
    bn_momentum: float = 0.1,
    flat_project: bool = False,
) -> list[nn.Module]:
    """[1x1 expand (if mid != in), kxk depthwise, SE (if se_ch), 1x1 linear project].

    The projection is a ConvBNAct without activation (torchvision MBConv / MobileNetV3), or with
    `flat_project` a bare Conv2d then BatchNorm2d (torchvision MobileNetV2).
    """
    in_ch, mid_ch, out_ch = block.in_ch, block.mid_ch, block.out_ch
    bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
    layers: list[nn.Module] = []
    if mid_ch != in_ch:
        layers.append(ConvBNAct(in_ch, mid_ch, 1, act=act, **bn))
    layers.append(
        ConvBNAct(mid_ch, mid_ch, block.kernel, block.stride, groups=mid_ch, act=act, **bn)
    )
    if se_ch:
        layers.append(SqueezeExcitation(mid_ch, se_ch, act=se_act, gate=se_gate))
    if flat_project:
        layers += conv_bn_act(mid_ch, out_ch, act=None, **bn)
    else:
        layers.append(ConvBNAct(mid_ch, out_ch, act=None, **bn))
    return layers


class InvertedResidual(nn.Module):
    """torchvision's residual wrapper: body(x), plus x when `skip` (after stochastic depth).

    The body Sequential is registered under `body` ("block" for MBConv and MobileNetV3, "conv" for
    MobileNetV2) so the state-dict keys match each reference.
    """

    def __init__(
        self, layers: list[nn.Module], skip: bool, drop_path: float = 0.0, body: str = "block"
    ) -> None:
        super().__init__()
        self.body_name = body
        self.add_module(body, nn.Sequential(*layers))
        self.skip = skip
        self.stochastic_depth = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = getattr(self, self.body_name)(x)
        if self.skip:
            out = self.stochastic_depth(out) + x
        return out


class TorchvisionNet(nn.Module):
    """features -> global average pool -> flatten(1) -> classifier (torchvision's classifier nets).

    `pool_module=False` pools with the functional call, as torchvision's MobileNetV2 does.
    """

    def __init__(
        self, features: list[nn.Module], classifier: list[nn.Module], pool_module: bool = True
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1) if pool_module else None
        self.classifier = nn.Sequential(*classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1) if self.avgpool is None else self.avgpool(x)
        return self.classifier(torch.flatten(x, 1))


def init_torchvision(model: nn.Module, linear: str = "normal") -> nn.Module:
    """torchvision's init: kaiming-normal (fan_out) convs, unit BN, Linear normal(0, 0.01) for the
    MobileNets or uniform(+-1/sqrt(out)) for EfficientNet (`linear="uniform"`)."""
    return _init(
        model,
        conv=lambda m: nn.init.kaiming_normal_(m.weight, mode="fan_out"),
        linear=_uniform if linear == "uniform" else lambda m: nn.init.normal_(m.weight, 0, 0.01),
    )


def _init(
    model: nn.Module, conv: Callable[[nn.Conv2d], object], linear: Callable[[nn.Linear], object]
) -> nn.Module:
    """Conv2d and Linear weights by the given rules, BatchNorm weights 1, every bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            conv(m)
        elif isinstance(m, nn.Linear):
            linear(m)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    return model


def _uniform(m: nn.Linear) -> None:
    bound = 1.0 / math.sqrt(m.out_features)
    nn.init.uniform_(m.weight, -bound, bound)


# --- timm layout -----------------------------------------------------------------------------


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm2d followed by an activation, with BatchNorm2d's keys (timm's BatchNormAct2d)."""

    def __init__(self, channels: int, act: str | None, eps: float = 1e-5) -> None:
        super().__init__(channels, eps=eps)
        self.act = make_act(act) or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class DepthwiseSeparable(nn.Module):
    """timm DepthwiseSeparableConv: conv_dw, bn1 (act), conv_pw, bn2 (act if `pw_act`).

    Skip when stride 1 and in == out, unless `noskip` (timm's `dsa` blocks of MobileNetV1).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int,
        act: str,
        pw_act: bool = False,
        noskip: bool = False,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.has_skip = stride == 1 and in_ch == out_ch and not noskip
        self.conv_dw = _conv(in_ch, in_ch, kernel, stride, groups=in_ch)
        self.bn1 = BatchNormAct2d(in_ch, act, bn_eps)
        self.conv_pw = _conv(in_ch, out_ch)
        self.bn2 = BatchNormAct2d(out_ch, act if pw_act else None, bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv_pw(self.bn1(self.conv_dw(x))))
        return out + x if self.has_skip else out


class TimmInvertedResidual(nn.Module):
    """timm InvertedResidual without SE: conv_pw, bn1 (act), conv_dw, bn2 (act), conv_pwl, bn3."""

    def __init__(self, block: BlockShape, act: str, bn_eps: float) -> None:
        super().__init__()
        in_ch, mid_ch, out_ch = block.in_ch, block.mid_ch, block.out_ch
        self.has_skip = block.skip
        self.conv_pw = _conv(in_ch, mid_ch)
        self.bn1 = BatchNormAct2d(mid_ch, act, bn_eps)
        self.conv_dw = _conv(mid_ch, mid_ch, block.kernel, block.stride, groups=mid_ch)
        self.bn2 = BatchNormAct2d(mid_ch, act, bn_eps)
        self.conv_pwl = _conv(mid_ch, out_ch)
        self.bn3 = BatchNormAct2d(out_ch, None, bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))
        out = self.bn3(self.conv_pwl(out))
        return out + x if self.has_skip else out


class TimmNet(nn.Module):
    """timm EfficientNet shell: conv_stem, bn1, blocks (stages), conv_head/bn2 if `head_ch`,
    global_pool (avg + flatten), classifier (Linear). No dropout: timm's default drop_rate is 0."""

    def __init__(
        self,
        stem_ch: int,
        stages: list[list[nn.Module]],
        out_ch: int,
        head_ch: int | None,
        num_classes: int,
        act: str,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.conv_stem = _conv(3, stem_ch, 3, 2)
        self.bn1 = BatchNormAct2d(stem_ch, act, bn_eps)
        self.blocks = nn.Sequential(*(nn.Sequential(*stage) for stage in stages))
        if head_ch:
            self.conv_head = _conv(out_ch, head_ch)
            self.bn2 = BatchNormAct2d(head_ch, act, bn_eps)
        else:
            self.conv_head, self.bn2, head_ch = nn.Identity(), nn.Identity(), out_ch
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.classifier = nn.Linear(head_ch, num_classes)
        init_timm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.bn1(self.conv_stem(x)))
        x = self.bn2(self.conv_head(x))
        return self.classifier(self.global_pool(x))


def init_timm(model: nn.Module) -> nn.Module:
    """timm's `efficientnet_init_weights`: conv normal(0, sqrt(2 / fan_out)) with fan_out =
    k*k*out/groups, unit BN, Linear uniform(+-1/sqrt(out))."""

    def conv(m: nn.Conv2d) -> None:
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))

    return _init(model, conv=conv, linear=_uniform)
