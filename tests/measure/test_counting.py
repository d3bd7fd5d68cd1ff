"""rexbench.measure.counting.counts: hand-computed toy networks, and every registered model against the reference table.

Reference numbers: tests/data/reference_counts.json (measured on the official ReXNet code,
torchvision and timm). Every model is built once (module-level cache) and counted with one thread:
the counts do not depend on threads, and on a busy 2-core machine one thread is several times faster.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

import rexbench
from rexbench.errors import RexbenchError
from rexbench.measure.counting.counts import (
    COUNTERS,
    count,
    count_by_module,
    count_model,
    layer_macs,
)
from rexbench.models.shapes import MIN_SIZE

pytestmark = pytest.mark.usefixtures("one_thread")


# --- toy networks, counted by hand ---------------------------------------------------------------


class Scale(nn.Module):
    """Holds its own weight and multiplies by it: outside the Conv/Linear convention."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class Toy(nn.Module):
    """Input 1x3x8x8. Per layer: params; output; multiply-adds (MACs)."""

    def __init__(self) -> None:
        super().__init__()
        # 8*3*3*3 weights + 8 bias = 224 params; out 1x8x8x8 = 512 elements, each 3*3*3 = 27 MACs
        # -> 13,824 (bias not counted)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        # 8 weight + 8 bias = 16 params; 512 elements: fvcore 2/element = 1,024, thop 4/element = 2,048
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        # depthwise, stride 2: 8*1*3*3 = 72 params; out 1x8x4x4 = 128 elements, each (8/8)*9 = 9
        # -> 1,152
        self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False)
        # pointwise: 16*8 = 128 params; out 1x16x4x4 = 256 elements, each 8 -> 2,048
        self.pw = nn.Conv2d(8, 16, 1, bias=False)
        self.silu = nn.SiLU()  # thop has no rule for SiLU; fvcore/torch: aten silu unsupported
        self.scale = Scale(16)  # 16 params; a mul no counter counts
        # pool: in 256, out 16 elements: fvcore counts the input (256), thop (16/1 + 1) * 16 = 272
        self.pool = nn.AdaptiveAvgPool2d(1)
        # 16*10 + 10 = 170 params; out 10 elements, each 16 -> 160
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.conv(x)))
        x = self.scale(self.silu(self.pw(self.dw(x))))
        return self.fc(self.pool(x).flatten(1))


TOY_SHAPE = (1, 3, 8, 8)
TOY_PARAMS = 224 + 16 + 72 + 128 + 16 + 170  # 626
TOY_CONV_LINEAR = 13_824 + 1_152 + 2_048 + 160  # 17,184
TOY_FVCORE = TOY_CONV_LINEAR + 1_024 + 256  # 18,464: + 2 per BN element + pool input
TOY_THOP = TOY_CONV_LINEAR + 2_048 + 272  # 19,504: + 4 per BN element + pool input and output


def test_toy_every_counter_exactly() -> None:
    counts = count_model(Toy(), TOY_SHAPE)
    assert counts.input_shape == TOY_SHAPE
    assert counts.params_total == counts.params_trainable == TOY_PARAMS == 626
    assert counts.macs_conv == TOY_CONV_LINEAR == 17_184
    assert counts.macs_fvcore == TOY_FVCORE == 18_464
    assert counts.macs_thop == TOY_THOP == 19_504
    assert counts.flops_torch == 2 * TOY_CONV_LINEAR == 34_368
    assert counts.conv_linear_macs == dict.fromkeys(COUNTERS, TOY_CONV_LINEAR)
    assert counts.counters_agree


def test_toy_skipped_is_recorded_not_silent() -> None:
    skipped = count_model(Toy(), TOY_SHAPE).skipped
    assert skipped["conv"] == {"Scale": 1}  # a weighted module whose arithmetic is not conv/linear
    assert skipped["fvcore"] == {"aten::silu": 1, "aten::mul": 1}  # relu, flatten: fvcore ignores
    assert skipped["thop"] == {"SiLU": 1, "Scale": 1}  # leaf modules with no thop rule
    torch_skipped = set(skipped["torch"])
    assert {"aten.silu", "aten.mul", "aten.mean"} <= torch_skipped
    assert not any("conv" in op or "mm" in op for op in torch_skipped)
    assert not any(
        op in torch_skipped for op in ("aten.view", "aten.t", "aten.cat")
    )  # no arithmetic


def test_counters_can_be_chosen_and_unknown_ones_refused() -> None:
    counts = count_model(Toy(), TOY_SHAPE, counters=("conv", "thop"))
    assert (counts.macs_conv, counts.macs_thop) == (TOY_CONV_LINEAR, TOY_THOP)
    assert counts.macs_fvcore is None and counts.flops_torch is None
    assert set(counts.conv_linear_macs) == set(counts.skipped) == {"conv", "thop"}
    with pytest.raises(RexbenchError, match="unknown counter"):
        count_model(Toy(), TOY_SHAPE, counters=("conv", "ptflops"))


def test_linear_without_bias_on_3d_input() -> None:
    # 2x5x16 -> Linear(16, 4): 2*5*4 = 40 outputs, each 16 MACs = 640. torch sees aten.mm
    counts = count_model(nn.Sequential(nn.Linear(16, 4, bias=False)), (2, 5, 16))
    assert counts.params_total == 64
    assert counts.conv_linear_macs == dict.fromkeys(COUNTERS, 640)
    assert (counts.macs_conv, counts.macs_fvcore, counts.macs_thop) == (640, 640, 640)
    assert counts.flops_torch == 1280


def test_transposed_conv_counts_input_side() -> None:
    # ConvTranspose2d(4, 2, 3, stride 2) on 1x4x5x5: each of the 100 input elements is multiplied
    # into 2 * 3*3 outputs -> 1,800 MACs. thop's formula ignores the transposition (it uses
    # output 1x2x11x11 = 242 elements x 4 in-channels x 9 = 8,712); the other three agree.
    counts = count_model(nn.Sequential(nn.ConvTranspose2d(4, 2, 3, stride=2)), (1, 4, 5, 5))
    assert counts.macs_conv == counts.macs_fvcore == 1_800
    assert counts.flops_torch == 3_600
    assert counts.macs_thop == 8_712
    assert not counts.counters_agree


def test_layer_macs_grouped_conv() -> None:
    conv = nn.Conv2d(8, 12, 3, padding=1, groups=4)  # each output sees 8/4 = 2 channels x 9 taps
    x = torch.zeros(1, 8, 6, 6)
    assert layer_macs(conv, (x,), conv(x)) == 12 * 6 * 6 * 2 * 9  # 7,776


def test_count_model_does_not_mutate_the_model() -> None:
    model = Toy()
    model.train()
    model.dw.eval()  # a mixed state must come back exactly
    flags = {name: m.training for name, m in model.named_modules()}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_model(model, TOY_SHAPE)
    count_by_module(model, TOY_SHAPE, depth=3)
    after = model.state_dict()
    assert list(after) == list(before)  # no total_ops / total_params buffers left by thop
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats untouched
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_frozen_parameters_are_not_trainable() -> None:
    model = Toy()
    model.conv.requires_grad_(False)
    counts = count_model(model, TOY_SHAPE, counters=("conv",))
    assert (counts.params_total, counts.params_trainable) == (626, 626 - 224)


def test_to_dict_is_json_ready() -> None:
    import json

    data = count_model(Toy(), TOY_SHAPE).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["input_shape"] == [1, 3, 8, 8]
    assert data["macs_fvcore"] == TOY_FVCORE


def test_by_module_rows() -> None:
    rows = count_by_module(Toy(), TOY_SHAPE, depth=1)
    by_name = {row.name: row for row in rows}
    assert [row.name for row in rows] == [
        "",
        "conv",
        "bn",
        "act",
        "dw",
        "pw",
        "silu",
        "scale",
        "pool",
        "fc",
    ]
    assert (by_name[""].params, by_name[""].macs_conv) == (626, 17_184)
    assert by_name[""].type == "Toy" and by_name[""].depth == 0
    assert (by_name["conv"].params, by_name["conv"].macs_conv) == (224, 13_824)
    assert (by_name["dw"].macs_conv, by_name["dw"].output_shape) == (1_152, (1, 8, 4, 4))
    assert (by_name["fc"].macs_conv, by_name["fc"].output_shape) == (160, (1, 10))
    assert by_name["bn"].macs_conv == 0 and by_name["bn"].params == 16
    assert by_name[""].output_shape == (1, 10)
    assert [row.name for row in count_by_module(Toy(), TOY_SHAPE, depth=0)] == [""]


def test_by_module_nested_sums_and_depth() -> None:
    # conv a: 4x3 + 4 = 16 params, out 1x4x5x5 = 100 elements x 3 = 300 MACs
    # conv b (no padding): 4x4x9 + 4 = 148 params, out 1x4x3x3 = 36 elements x 4*9 = 1,296 MACs
    model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU()), nn.Conv2d(4, 4, 3))
    rows = count_by_module(model, (1, 3, 5, 5), depth=1)
    assert [(r.name, r.depth, r.params, r.macs_conv, r.output_shape) for r in rows] == [
        ("", 0, 164, 1_596, (1, 4, 3, 3)),
        ("0", 1, 16, 300, (1, 4, 5, 5)),
        ("1", 1, 148, 1_296, (1, 4, 3, 3)),
    ]
    deeper = count_by_module(model, (1, 3, 5, 5), depth=2)
    assert [r.name for r in deeper] == ["", "0", "0.0", "0.1", "1"]
    assert deeper[2].macs_conv == 300 and deeper[3].macs_conv == 0


# --- count(): by name, resolution and input shape -------------------------------------------------


def test_count_by_name_uses_the_registry_resolution() -> None:
    counts = count("tf_efficientnet_lite1", counters=("conv",))  # alias -> canonical, 240 px
    assert counts.model == "efficientnet_lite1"
    assert counts.input_shape == (1, 3, 240, 240)
    assert counts.macs_conv == REFERENCE["efficientnet_lite1"][3]


def test_count_input_shape_and_resolution() -> None:
    by_shape = count("mobilenet_v3_small", input_shape=(3, 96, 128), counters=("conv",))
    assert by_shape.input_shape == (1, 3, 96, 128)
    by_res = count("mobilenet_v3_small", resolution=96, counters=("conv",))
    assert by_res.input_shape == (1, 3, 96, 96)
    assert by_res.macs_conv < by_shape.macs_conv


@pytest.mark.parametrize("resolution", [0, -1, MIN_SIZE - 1, 100_000])
def test_bad_resolution_is_one_clear_error(resolution: int) -> None:
    with pytest.raises(RexbenchError, match="resolution must be between 32"):
        count("rexnet_x1.0", resolution=resolution)


@pytest.mark.parametrize("shape", [(3, 224), (0, 224, 224), (3, 16, 224)])
def test_bad_input_shape_is_one_clear_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(RexbenchError):
        count("rexnet_x1.0", input_shape=shape)


def test_input_the_model_cannot_take_is_one_clear_error() -> None:
    with pytest.raises(RexbenchError, match="could not run mobilenet_v3_small on input 1x4x64x64"):
        count("mobilenet_v3_small", input_shape=(4, 64, 64), counters=("conv",))


# --- every registered model against the reference counts --------------------------------------------

# name: (params, macs_conv @224, default resolution, macs_conv @default, fvcore @224, thop @224)
REFERENCE: dict[str, tuple[int, int, int, int, int, int]] = {
    "rexnet_x0.9": (4_091_257, 347_691_428, 224, 347_691_428, 363_118_764, 377_332_954),
    "rexnet_x1.0": (4_796_873, 398_370_392, 224, 398_370_392, 414_561_072, 429_433_498),
    "rexnet_x1.1": (5_642_328, 480_554_448, 224, 480_554_448, 498_471_140, 514_937_542),
    "rexnet_x1.2": (6_568_698, 566_989_598, 224, 566_989_598, 586_426_998, 604_280_614),
    "rexnet_x1.3": (7_557_091, 662_229_098, 224, 662_229_098, 683_362_722, 702_780_238),
    "rexnet_x1.4": (8_606_611, 762_306_734, 224, 762_306_734, 784_953_222, 805_751_566),
    "rexnet_x1.5": (9_728_593, 875_828_154, 224, 875_828_154, 900_215_164, 922_620_824),
    "rexnet_x2.0": (16_366_620, 1_528_850_782, 224, 1_528_850_782, 1_561_285_948, 1_591_081_078),
    "rexnet_x2.2": (19_485_308, 1_842_508_176, 224, 1_842_508_176, 1_878_164_874, 1_910_920_704),
    "rexnet_x3.0": (34_708_792, 3_395_980_620, 224, 3_395_980_620, 3_444_722_892, 3_489_506_874),
    "rexnet_lite_x1.0": (4_740_056, 406_806_592, 224, 406_806_592, 422_171_120, 437_474_208),
    "rexnet_lite_x1.3": (6_747_960, 646_448_384, 224, 646_448_384, 666_032_400, 685_536_544),
    "rexnet_lite_x1.5": (8_332_296, 836_350_720, 224, 836_350_720, 858_403_552, 880_364_224),
    "rexnet_lite_x2.0": (
        12_966_200,
        1_498_253_632,
        224,
        1_498_253_632,
        1_528_204_480,
        1_558_032_448,
    ),
    "efficientnet_b0": (5_288_548, 385_814_752, 224, 385_814_752, 401_659_392, 415_145_024),
    "efficientnet_b1": (7_794_184, 569_651_680, 240, 686_802_832, 591_918_848, 610_614_864),
    "efficientnet_b2": (9_109_994, 658_963_440, 260, 993_561_872, 682_325_856, 701_926_368),
    "efficientnet_b3": (12_233_232, 962_708_240, 300, 1_827_141_392, 993_639_392, 1_019_632_544),
    "mobilenet_v2": (3_504_872, 300_774_272, 224, 300_774_272, 314_193_216, 327_486_720),
    "mobilenet_v2_x1.4": (6_108_776, 582_195_824, 224, 582_195_824, 601_430_480, 620_489_520),
    "mobilenet_v3_large": (5_483_032, 216_589_760, 224, 216_589_760, 226_033_824, 234_838_456),
    "mobilenet_v3_small": (2_542_856, 56_510_400, 224, 56_510_400, 59_649_536, 62_477_944),
    "efficientnet_lite0": (4_652_008, 385_187_552, 224, 385_187_552, 398_725_664, 385_251_552),
    "efficientnet_lite1": (5_416_680, 502_467_680, 240, 600_185_232, 520_001_056, 484_915_200),
    "efficientnet_lite2": (6_092_072, 576_509_424, 260, 859_736_272, 594_892_656, 558_813_472),
    "efficientnet_lite3": (8_197_096, 852_099_536, 280, 1_383_321_872, 876_014_672, 831_990_432),
    "mobilenet_v1": (4_231_976, 568_740_352, 224, 568_740_352, 578_875_904, 568_791_552),
}
# The reference's thop column for lite1..3 was measured on timm's tf_efficientnet_lite1..3, whose
# stride-2 convs are Conv2dSame: a Conv2d *subclass*, for which thop has no rule (it matches exact
# types), so it counted them as 0. rexbench builds these with symmetric padding and plain Conv2d
# (same shapes, params and macs_conv, per the reference counts), so thop sees those convs here.
THOP_SKIPPED_CONV2DSAME = {"efficientnet_lite1", "efficientnet_lite2", "efficientnet_lite3"}

MODELS = rexbench.list_models()


def _stride2_conv_macs(model: nn.Module, resolution: int) -> int:
    """MACs of the convs with stride > 1 (the ones timm's tf_ models build as Conv2dSame)."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if max(module.stride) > 1:
            total += layer_macs(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, resolution, resolution))
    finally:
        for handle in handles:
            handle.remove()
    return total


@functools.cache
def _measured(name: str) -> dict:
    """Build `name` once: all four counters at 224, conv MACs at the default resolution."""
    model = rexbench.create_model(name)
    from rexbench.registry import MODELS as REGISTRY

    resolution = REGISTRY.get(name).resolution
    result = {"at_224": count_model(model, (1, 3, 224, 224)), "resolution": resolution}
    if resolution != 224:
        result["at_default"] = count_model(model, (1, 3, resolution, resolution), ("conv",))
    if name in THOP_SKIPPED_CONV2DSAME:
        result["stride2_macs"] = _stride2_conv_macs(model, 224)
    return result


def test_every_reference_model_is_registered() -> None:
    assert set(REFERENCE) <= set(MODELS)
    assert set(MODELS) - set(REFERENCE) == {"rexnet_plain"}  # no reference code: see test_rexnet


@pytest.mark.parametrize("name", list(REFERENCE))
def test_params_and_macs_conv_match_reference_exactly(name: str) -> None:
    params, macs_224, resolution, macs_default, _fvcore, _thop = REFERENCE[name]
    measured = _measured(name)
    at_224 = measured["at_224"]
    assert (at_224.params_total, at_224.params_trainable) == (params, params)
    assert at_224.macs_conv == macs_224
    assert measured["resolution"] == resolution
    at_default = measured.get("at_default", at_224)
    assert at_default.macs_conv == macs_default


@pytest.mark.parametrize("name", MODELS)
def test_four_counters_agree_on_conv_linear_macs(name: str) -> None:
    at_224 = _measured(name)["at_224"]
    seen = at_224.conv_linear_macs
    assert set(seen) == set(COUNTERS)
    assert len(set(seen.values())) == 1, seen
    assert at_224.macs_conv == seen["conv"]
    assert at_224.flops_torch == 2 * at_224.macs_conv  # torch's total: conv + linear only
    assert at_224.skipped["conv"] == {}  # nothing with weights escapes the conv + linear rule


@pytest.mark.parametrize("name", list(REFERENCE))
def test_fvcore_and_thop_totals_match_reference(name: str) -> None:
    *_, fvcore, thop = REFERENCE[name]
    measured = _measured(name)
    at_224 = measured["at_224"]
    assert at_224.macs_fvcore == fvcore
    if name in THOP_SKIPPED_CONV2DSAME:
        assert at_224.macs_thop == thop + measured["stride2_macs"]
    else:
        assert at_224.macs_thop == thop
