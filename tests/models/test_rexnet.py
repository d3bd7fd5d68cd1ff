"""ReXNet v1 / lite / plain against the official clovaai code's numbers.

Expected numbers: the reference implementations' params and macs_conv, and the official code's
out-channel tables; key files copied into tests/data.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rexbench import create_model
from rexbench.models.rexnet import (
    BlockCfg,
    LinearBottleneck,
    rexnet,
    rexnet_config,
    rexnet_lite,
    rexnet_lite_config,
    rexnet_plain,
    rexnet_plain_config,
)

KEYS = Path(__file__).parents[1] / "data" / "state_dict_keys"


pytestmark = pytest.mark.usefixtures("one_thread")


# measured on the official code
PARAMS = {
    "rexnet_x0.9": 4_091_257,
    "rexnet_x1.0": 4_796_873,
    "rexnet_x1.1": 5_642_328,
    "rexnet_x1.2": 6_568_698,
    "rexnet_x1.3": 7_557_091,
    "rexnet_x1.4": 8_606_611,
    "rexnet_x1.5": 9_728_593,
    "rexnet_x2.0": 16_366_620,
    "rexnet_x2.2": 19_485_308,
    "rexnet_x3.0": 34_708_792,
    "rexnet_lite_x1.0": 4_740_056,
    "rexnet_lite_x1.3": 6_747_960,
    "rexnet_lite_x1.5": 8_332_296,
    "rexnet_lite_x2.0": 12_966_200,
}

# official ReXNetV1: stem, 16 block outs, penultimate
V1_CHANNELS = {
    0.9: (32, "16 26 36 46 56 67 77 87 97 107 117 127 138 148 158 168", 1152),
    1.0: (32, "16 27 38 50 61 72 84 95 106 117 128 140 151 162 174 185", 1280),
    1.1: (35, "18 30 42 55 67 79 92 104 117 129 141 154 166 178 191 203", 1408),
    1.2: (38, "19 33 46 60 73 87 100 114 127 141 154 168 181 195 208 222", 1536),
    1.3: (42, "21 35 50 65 79 94 109 123 138 152 167 182 196 211 226 240", 1664),
    1.4: (45, "22 38 54 70 85 101 117 133 148 164 180 196 211 227 243 259", 1792),
    1.5: (48, "24 41 58 75 92 108 125 142 159 176 193 210 226 243 260 277", 1920),
    2.0: (64, "32 54 77 100 122 144 167 190 212 234 257 280 302 324 347 370", 2560),
    2.2: (70, "35 60 85 109 134 159 184 208 233 258 283 307 332 357 382 406", 2816),
    3.0: (96, "48 82 116 149 183 217 250 284 318 352 386 419 453 487 520 554", 3840),
}
# official ReXNetV1_lite
LITE_CHANNELS = {
    1.0: (32, "16 32 40 48 64 72 80 96 104 112 128 136 144 160 168 184", 1280),
    1.3: (40, "24 32 48 64 80 96 104 120 136 152 160 176 192 208 224 232", 1664),
    1.5: (48, "24 40 56 72 88 104 120 136 152 176 192 208 224 240 256 272", 1920),
    2.0: (64, "32 56 80 96 120 144 160 184 208 232 248 272 296 320 336 360", 2560),
}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def key_file(name: str) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (KEYS / name).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split()
        rows.append((key, () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))))
    return rows


def key_shapes(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("name", list(PARAMS))
def test_params_match_official(name: str) -> None:
    assert n_params(create_model(name)) == PARAMS[name]


@pytest.mark.parametrize("width", list(V1_CHANNELS))
def test_v1_channels(width: float) -> None:
    stem, outs, pen = V1_CHANNELS[width]
    cfg = rexnet_config(width)
    assert (cfg.stem, [b.out_ch for b in cfg.blocks], cfg.pen) == (stem, _ints(outs), pen)
    assert [b.in_ch for b in cfg.blocks] == [stem, *_ints(outs)[:-1]]


@pytest.mark.parametrize("mult", list(LITE_CHANNELS))
def test_lite_channels(mult: float) -> None:
    stem, outs, pen = LITE_CHANNELS[mult]
    cfg = rexnet_lite_config(mult)
    assert (cfg.stem, [b.out_ch for b in cfg.blocks], cfg.pen) == (stem, _ints(outs), pen)


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split()]


def test_round_half_to_even() -> None:
    """x1.0 blocks 2 and 10 are exact ties 38.5 and 128.5: Python's round gives 38 and 128."""
    outs = [b.out_ch for b in rexnet_config(1.0).blocks]
    assert (outs[2], outs[10]) == (38, 128)


def test_v1_structure() -> None:
    cfg = rexnet_config(1.0)
    assert [b.stride for b in cfg.blocks] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]
    assert [b.t for b in cfg.blocks] == [1] + [6] * 15
    assert [b.se for b in cfg.blocks] == [False] * 3 + [True] * 13
    model = rexnet(1.0)
    se = model.features[6].out[5]
    assert (se.fc[0].in_channels, se.fc[0].out_channels) == (228, 19)  # block 3: 38 * 6, // 12
    assert se.fc[0].bias is not None and isinstance(se.fc[1], torch.nn.BatchNorm2d)
    assert isinstance(model.features[2], torch.nn.SiLU)
    assert isinstance(model.features[6].out[6], torch.nn.ReLU6)  # ReLU6 after SE


def test_official_keys_and_shapes() -> None:
    assert key_shapes(rexnet(1.0)) == key_file("official-rexnet_x1.0.txt")
    assert key_shapes(rexnet_lite(1.0)) == key_file("official-rexnet_lite_x1.0.txt")
    # the ordered key list is the same at every width; only shapes change
    assert list(rexnet(1.3).state_dict()) == [k for k, _ in key_file("official-rexnet_x1.0.txt")]
    assert rexnet(2.0).state_dict()["output.1.weight"].shape == (1000, 2560, 1, 1)


def test_residual_pattern() -> None:
    """Shortcut iff stride 1 and in <= out (as in the official code): 11 shortcuts at depth 1."""
    blocks = [m for m in rexnet(1.0).features if isinstance(m, LinearBottleneck)]
    assert [int(b.use_shortcut) for b in blocks] == [0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1]
    lite = [m for m in rexnet_lite(1.0).features if isinstance(m, LinearBottleneck)]
    assert sum(b.use_shortcut for b in lite) == 11


def test_partial_residual_adds_onto_first_channels() -> None:
    """With the branch zeroed (last BN weight and bias 0), a 4 -> 6 block returns [x, 0, 0]."""
    block = LinearBottleneck(BlockCfg(4, 6, t=6, stride=1, se=True), exp_act="silu").eval()
    with torch.no_grad():
        block.out[-1].weight.zero_()
        block.out[-1].bias.zero_()
    x = torch.randn(2, 4, 5, 5)
    y = block(x)
    assert torch.equal(y, torch.cat([x, torch.zeros(2, 2, 5, 5)], dim=1))
    # and it is differentiable (no in-place add on a slice)
    block.train()
    x.requires_grad_(True)
    block(x).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("name", ["rexnet_x1.0", "rexnet_lite_x1.0", "rexnet_plain"])
def test_batch_one_output_shape(name: str) -> None:
    model = create_model(name, num_classes=10)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    assert not model.training


def test_any_width_builds() -> None:
    """Widths outside the paper's list follow the same rule (counts checked against the official code)."""
    assert n_params(create_model("rexnet_x1.75")) == 12_844_527
    assert n_params(create_model("rexnet_x0.5")) == 1_790_471
    assert n_params(create_model("rexnet_lite_x0.75")) == 3_803_896
    assert n_params(create_model("rexnet_100")) == PARAMS["rexnet_x1.0"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fvcore imports torch.jit.script
def test_plain_reconstruction() -> None:
    """MobileNetV1 depth/strides, linear 1x1 outputs, ReLU after dw, SiLU after 1x1, no SE/skips;
    params and conv MACs within 3% of paper Table A1 (3.4M / 0.56B)."""
    from fvcore.nn import FlopCountAnalysis

    cfg = rexnet_plain_config()
    assert len(cfg.blocks) == 13 and (cfg.stem, cfg.pen) == (32, 1280)
    assert [b.stride for b in cfg.blocks] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    assert [b.out_ch for b in cfg.blocks] == list(range(136, 521, 32))
    model = rexnet_plain().eval()
    assert n_params(model) == 3_438_872
    assert abs(n_params(model) / 3.4e6 - 1) < 0.03
    acts = [
        type(m).__name__ for m in model.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.SiLU))
    ]
    assert acts == ["ReLU"] + ["ReLU", "SiLU"] * 13 + ["SiLU"]
    assert not any(isinstance(m, torch.nn.Sigmoid) for m in model.modules())
    flops = FlopCountAnalysis(model, torch.randn(1, 3, 224, 224))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    macs = flops.by_operator()["conv"]
    assert macs == 558_998_000
    assert abs(macs / 0.56e9 - 1) < 0.03
