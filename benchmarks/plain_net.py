"""A ReXNet-style network written with torch alone (no rexbench import), so that a minimal timing loop
and `rexbench profile py:benchmarks/plain_net.py:build` time the very same model
(benchmarks/cli_overhead.py)."""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, k: int = 1, s: int = 1, groups: int = 1, act: str | None = "silu"):
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act == "silu":
        layers.append(nn.SiLU())
    elif act == "relu6":
        layers.append(nn.ReLU6())
    return layers


class _SE(nn.Module):
    def __init__(self, ch: int, ratio: int = 12) -> None:
        super().__init__()
        mid = max(8, ch // ratio)
        self.fc = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(ch, mid, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, ch, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, t: int, stride: int, se: bool) -> None:
        super().__init__()
        mid = cin * t
        layers = _conv(cin, mid) if t != 1 else []
        layers += _conv(mid, mid, 3, stride, groups=mid, act=None)
        if se:
            layers.append(_SE(mid))
        layers.append(nn.ReLU6())
        layers += _conv(mid, cout, act=None)
        self.body = nn.Sequential(*layers)
        self.skip = stride == 1 and cin <= cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if not self.skip:
            return out
        c = x.shape[1]
        return torch.cat([out[:, :c] + x, out[:, c:]], dim=1)


def build(width: float = 1.0) -> nn.Module:
    """16 blocks whose widths grow linearly (as in ReXNet), times `width`."""
    rows = [(1, 1, False)] + [(2, 6, False), (1, 6, False)] + [(2, 6, True), (1, 6, True)]
    rows += [(2, 6, True)] + [(1, 6, True)] * 5 + [(2, 6, True)] + [(1, 6, True)] * 4
    stem = 32
    layers, cin, base = _conv(3, stem, 3, 2), stem, 16.0
    for i, (stride, t, se) in enumerate(rows):
        base += 180 / len(rows) if i else 0
        cout = int(round(base * width))
        layers.append(_Block(cin, cout, t, stride, se))
        cin = cout
    layers += _conv(cin, int(1280 * width))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(int(1280 * width), 1000)]
    return nn.Sequential(*layers).eval()


build.default_input_shape = (3, 224, 224)
