"""Baselines (EfficientNet B0-B3 / lite0-3, MobileNet V1 / V2 / V3) against their reference implementations.

Numbers: tests/data/reference_counts.json (torchvision / timm measured on torch 2.13).
Key lists: tests/data/state_dict_keys/ (key lists of the reference implementations).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from rexbench.models.efficientnet import block_configs, efficientnet_b, efficientnet_lite
from rexbench.models.layouts import DropPath
from rexbench.models.mobilenet import mobilenet_v3
from rexbench.registry import MODELS

KEYS = Path(__file__).parents[1] / "data" / "state_dict_keys"

# Reference counts: params, macs_conv @224, default resolution, macs_conv @default.
COUNTS = {
    "efficientnet_b0": (5_288_548, 385_814_752, 224, 385_814_752),
    "efficientnet_b1": (7_794_184, 569_651_680, 240, 686_802_832),
    "efficientnet_b2": (9_109_994, 658_963_440, 260, 993_561_872),
    "efficientnet_b3": (12_233_232, 962_708_240, 300, 1_827_141_392),
    "mobilenet_v2": (3_504_872, 300_774_272, 224, 300_774_272),
    "mobilenet_v2_x1.4": (6_108_776, 582_195_824, 224, 582_195_824),
    "mobilenet_v3_large": (5_483_032, 216_589_760, 224, 216_589_760),
    "mobilenet_v3_small": (2_542_856, 56_510_400, 224, 56_510_400),
    "efficientnet_lite0": (4_652_008, 385_187_552, 224, 385_187_552),
    "efficientnet_lite1": (5_416_680, 502_467_680, 240, 600_185_232),
    "efficientnet_lite2": (6_092_072, 576_509_424, 260, 859_736_272),
    "efficientnet_lite3": (8_197_096, 852_099_536, 280, 1_383_321_872),
    "mobilenet_v1": (4_231_976, 568_740_352, 224, 568_740_352),
}

KEY_FILES = {
    "efficientnet_b0": "torchvision-efficientnet_b0.txt",
    "efficientnet_b3": "torchvision-efficientnet_b3.txt",
    "mobilenet_v2": "torchvision-mobilenet_v2.txt",
    "mobilenet_v3_large": "torchvision-mobilenet_v3_large.txt",
    "mobilenet_v3_small": "torchvision-mobilenet_v3_small.txt",
    "efficientnet_lite0": "timm-efficientnet_lite0.txt",
    "mobilenet_v1": "timm-mobilenetv1_100.txt",
}


@pytest.fixture(scope="module")
def meta() -> dict[str, nn.Module]:
    """Every baseline built once via the registry, then moved to the meta device: forwards there
    propagate shapes only, so counting at full resolution costs no arithmetic."""
    return {name: MODELS.get(name).build().eval().to("meta") for name in COUNTS}


def conv_linear_macs(model: nn.Module, resolution: int) -> int:
    """Conv2d + Linear multiply-adds of one batch-1 forward (bias not counted), via forward hooks.

    A conv output element costs (in / groups) * kh * kw; a Linear output element costs in_features.
    """
    total = 0

    def hook(module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += out.numel() * (module.in_channels // module.groups) * kh * kw
        else:
            total += out.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            out = model(torch.randn(1, 3, resolution, resolution, device="meta"))
    finally:
        for h in handles:
            h.remove()
    assert out.shape == (1, 1000)
    return total


@pytest.mark.parametrize("name", list(COUNTS))
def test_params_exact(meta: dict[str, nn.Module], name: str) -> None:
    assert sum(p.numel() for p in meta[name].parameters()) == COUNTS[name][0]


@pytest.mark.parametrize("name", list(COUNTS))
def test_macs_conv_at_224_and_default_resolution(meta: dict[str, nn.Module], name: str) -> None:
    _params, macs_224, resolution, macs_res = COUNTS[name]
    assert MODELS.get(name).resolution == resolution
    assert conv_linear_macs(meta[name], 224) == macs_224
    if resolution != 224:  # B1-B3 and lite1-3 at 240/260/300 and 240/260/280
        assert conv_linear_macs(meta[name], resolution) == macs_res


# Real CPU forwards are few: the meta-device forwards above already check every model's (1, 1000)
# output at 224 and at its default resolution. lite1-3 run for real at their default resolutions;
# one model per forward path (torchvision pool module / functional pool, timm shell) at 64x64.
REAL_FORWARD = {
    "efficientnet_lite1": 240,
    "efficientnet_lite2": 260,
    "efficientnet_lite3": 280,
    "mobilenet_v2": 64,
    "mobilenet_v3_small": 64,
    "mobilenet_v1": 64,
}


@pytest.mark.parametrize("name", list(REAL_FORWARD))
def test_batch1_forward_on_cpu(name: str) -> None:
    """Batch 1 keeps its batch dimension (no squeeze) and the logits are finite."""
    torch.manual_seed(0)
    resolution = REAL_FORWARD[name]
    with torch.no_grad():
        out = MODELS.get(name).build().eval()(torch.randn(1, 3, resolution, resolution))
    assert out.shape == (1, 1000)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", list(KEY_FILES))
def test_state_dict_keys_and_shapes_exact(meta: dict[str, nn.Module], name: str) -> None:
    lines = (KEYS / KEY_FILES[name]).read_text().splitlines()
    expected = [tuple(line.split()) for line in lines if line.strip() and not line.startswith("#")]
    ours = [
        (key, "x".join(map(str, t.shape)) or "scalar") for key, t in meta[name].state_dict().items()
    ]
    assert ours == expected


def test_own_state_dict_round_trips_into_identical_logits() -> None:
    model = MODELS.get("mobilenet_v3_small").build().eval()
    clone = MODELS.get("mobilenet_v3_small").build()
    clone.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(clone.eval()(x), model(x))


def test_num_classes() -> None:
    model = MODELS.get("mobilenet_v3_small").build(num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert efficientnet_lite(0, num_classes=7).classifier.out_features == 7


def test_eval_is_deterministic_dropout_and_drop_path_identity() -> None:
    model = efficientnet_b(0).eval()  # dropout 0.2 and stochastic depth up to 0.2 * 15 / 16
    assert any(isinstance(m, DropPath) and m.p > 0 for m in model.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_drop_path_train_mode_drops_whole_samples() -> None:
    torch.manual_seed(0)
    drop = DropPath(0.5).train()
    out = drop(torch.ones(64, 3, 2, 2))
    per_sample = out.flatten(1)
    # each sample is kept and scaled by 1 / (1 - p) = 2, or zeroed as a whole
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert torch.all(per_sample.min(1).values == per_sample.max(1).values)
    assert 0 < (per_sample[:, 0] == 0).sum() < 64
    assert torch.equal(drop.eval()(torch.ones(4, 3)), torch.ones(4, 3))


def test_efficientnet_depth_and_width_scaling() -> None:
    """torchvision: ceil(n * depth) per stage; timm lite also keeps the first and last stage."""
    b1 = [len(s) for s in block_configs(1.0, 1.1, 32)]
    lite1 = [len(s) for s in block_configs(1.0, 1.1, 32, fix_ends=True)]
    assert b1 == [2, 3, 3, 4, 4, 5, 2]
    assert lite1 == [1, 3, 3, 4, 4, 5, 1]
    b3 = block_configs(1.2, 1.4, 40)
    assert [s[0].out_ch for s in b3] == [24, 32, 48, 96, 136, 232, 384]
    assert efficientnet_b(3).features[-1][0].out_channels == 1536  # head = 4 x last width
    assert efficientnet_lite(3).conv_head.out_channels == 1280  # lite head fixed


def test_batchnorm_settings_of_each_reference() -> None:
    """BN eps/momentum change the logits, so they must be the references' own."""

    def bn(model: nn.Module) -> set[tuple[float, float]]:
        return {(m.eps, m.momentum) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}

    assert bn(efficientnet_b(0)) == {(1e-5, 0.1)}  # torchvision B0-B4 use the default BN
    assert bn(mobilenet_v3("small")) == {(1e-3, 0.01)}  # torchvision MobileNetV3
    assert bn(efficientnet_lite(0)) == {(1e-5, 0.1)}  # timm efficientnet_lite0
    assert bn(efficientnet_lite(2)) == {(1e-3, 0.1)}  # timm tf_efficientnet_lite2 (TF eps)


def test_bad_builder_arguments() -> None:
    with pytest.raises(ValueError, match="0..3"):
        efficientnet_b(4)
    with pytest.raises(ValueError, match="large, small"):
        mobilenet_v3("medium")
