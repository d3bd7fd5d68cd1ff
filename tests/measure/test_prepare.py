"""rexbench.measure.backends.prepare with the PyTorch backend (backends/torch.py) and the inputs every
backend starts from (backends/inputs.py): never mutates its input, folds BN exactly, layouts, dtypes,
scoped freezing.

torch.compile is replaced by a recording fake here: a real cold compile takes 6-12 s even for a toy
model on the project's 2-core machines, too slow for the test suite.
"""

import pytest
import torch
from torch import nn

from rexbench.errors import RexbenchError
from rexbench.measure.backends import inputs
from rexbench.measure.backends import prepare as prep
from rexbench.measure.backends import torch as torch_backend
from rexbench.measure.backends.base import PreparedModel
from rexbench.measure.config import RunConfig

EAGER = RunConfig.preset("eager", runs=1, warmup=0)


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so folding changes the weights."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return model


class Toy(nn.Module):
    """conv-BN-ReLU, an SE-like gate with a BN inside, a partial (first-channels) residual, head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU()
        )
        self.block = nn.Sequential(nn.Conv2d(8, 12, 1, bias=False), nn.BatchNorm2d(12))
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(12, 4, 1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Conv2d(4, 12, 1),
            nn.Sigmoid(),
        )
        self.head = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.block(x)
        y = y * self.gate(y)
        y = torch.cat([y[:, :8] + x, y[:, 8:]], dim=1)
        return self.head(y.mean((2, 3)))


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it, the Sequential fallback folds it."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return y if float(y.sum()) > 0 else -y


def small_models() -> list[tuple[str, nn.Module]]:
    models = [("toy", Toy())]
    try:
        from rexbench.models.rexnet import rexnet, rexnet_lite
    except ImportError:  # the zoo is optional for these tests
        return models
    return models + [("rexnet_x0.5", rexnet(0.5)), ("rexnet_lite_x1.0", rexnet_lite(1.0))]


def output(prepared: PreparedModel) -> torch.Tensor:
    with torch.inference_mode():
        return prepared.run().float()


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_prepare_never_mutates_its_input():
    model = randomize_bn(Toy()).train()
    before = snapshot(model)
    config = RunConfig.preset("channels_last", fold_bn=True, runs=1, warmup=0)
    prepared = prep.prepare(model, config, default_resolution=32)
    assert prepared.module is not model and prepared.bn_folded == 3
    assert model.training and type(model) is Toy
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 3
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.stem[0].weight.is_contiguous()  # not switched to channels-last


def test_in_place_prepares_the_model_itself():
    model = randomize_bn(Toy()).train()
    x = torch.randn(1, 3, 32, 32)
    expected = model.eval()(x)
    prepared = prep.prepare(model.train(), RunConfig.preset("channels_last"), in_place=True)
    assert prepared.module is model and not model.training
    assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(prepared.module(x), expected)


@pytest.mark.parametrize("model", [pytest.param(m, id=n) for n, m in small_models()])
def test_bn_folding_keeps_outputs(model):
    model = randomize_bn(model).eval()
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    eager = prep.prepare(model, EAGER, default_resolution=64)
    folded = prep.prepare(model, RunConfig.preset("eager", fold_bn=True), default_resolution=64)
    assert folded.fold_method == torch_backend.FOLD_FX
    assert (folded.bn_folded, folded.bn_remaining) == (n_bn, 0)
    assert torch.equal(eager.input, folded.input)
    torch.testing.assert_close(output(folded), output(eager), rtol=1e-4, atol=1e-5)


def test_untraceable_model_falls_back_to_sequential_folding():
    model = randomize_bn(Untraceable()).eval()
    eager = prep.prepare(model, EAGER, default_resolution=16)
    folded = prep.prepare(model, RunConfig.preset("eager", fold_bn=True), default_resolution=16)
    assert folded.fold_method == torch_backend.FOLD_SEQUENTIAL
    assert (folded.bn_folded, folded.bn_remaining) == (1, 0)
    torch.testing.assert_close(output(folded), output(eager), rtol=1e-4, atol=1e-5)


def test_channels_last_layout_for_model_and_input():
    cl = prep.prepare(Toy(), RunConfig.preset("channels_last"), default_resolution=32)
    assert cl.input.is_contiguous(memory_format=torch.channels_last)
    assert not cl.input.is_contiguous()
    assert cl.module.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    eager = prep.prepare(Toy(), EAGER, default_resolution=32)
    assert eager.input.is_contiguous() and eager.module.stem[0].weight.is_contiguous()


def test_make_input_shape_dtype_seed_and_resolution():
    config = RunConfig.preset("eager", batch_size=3, resolution=40)
    x = inputs.make_input(config, default_resolution=224)
    assert x.shape == (3, 3, 40, 40) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert torch.equal(x, inputs.make_input(config))
    assert not torch.equal(x, inputs.make_input(config, seed=1))
    assert inputs.make_input(RunConfig.preset("eager")).shape == (1, 3, 224, 224)
    prepared = prep.prepare(Toy(), RunConfig.preset("eager", batch_size=2), default_resolution=48)
    assert prepared.resolution == 48 and prepared.to_dict()["input_shape"] == [2, 3, 48, 48]


def test_bf16_refused_where_the_cpu_cannot_run_it(monkeypatch):
    monkeypatch.setattr(inputs, "_cpu_supports", lambda dtype: False)
    with pytest.raises(RexbenchError, match="bf16 is not supported on this CPU") as info:
        prep.prepare(Toy(), RunConfig.preset("eager", dtype="bf16"))
    assert "use --dtype fp32" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(RexbenchError, match="fp16 is not supported on this CPU"):
        inputs.check_dtype("cpu", "fp16")


def test_bf16_prepared_where_supported(monkeypatch):
    monkeypatch.setattr(inputs, "_cpu_supports", lambda dtype: True)
    prepared = prep.prepare(Toy(), RunConfig.preset("eager", dtype="bf16"), default_resolution=16)
    assert prepared.input.dtype == torch.bfloat16
    assert prepared.module.stem[0].weight.dtype == torch.bfloat16
    assert output(prepared).shape == (1, 5)


def test_real_dtype_check_agrees_with_onednn():
    supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert inputs._cpu_supports("bf16") == supported
    if not supported:
        with pytest.raises(RexbenchError, match="bf16 is not supported on this CPU"):
            inputs.check_dtype("cpu", "bf16")
    inputs.check_dtype("cpu", "fp32")  # always fine


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(RexbenchError, match="CUDA is not available.*use --device cpu"):
        prep.prepare(Toy(), RunConfig.preset("eager", device="cuda"))
    with pytest.raises(RexbenchError, match="unknown device"):
        inputs.resolve_device("tpu")


class FakeCompile:
    """Stands in for torch.compile: records the mode and the global state at every call."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.modes, self.calls, self.fail, self.dynamic = [], [], fail, []

    def __call__(self, module, mode=None, dynamic=None):
        self.modes.append(mode)
        self.dynamic.append(dynamic)

        def compiled(x):
            self.calls.append((torch._inductor.config.freezing, torch.is_inference_mode_enabled()))
            if self.fail is not None:
                raise self.fail
            return module(x)

        return compiled


def test_freezing_only_inside_the_first_call_and_restored(monkeypatch):
    fake = FakeCompile()
    monkeypatch.setattr(torch, "compile", fake)
    assert torch._inductor.config.freezing is False
    prepared = prep.prepare(Toy(), RunConfig.preset("max"), default_resolution=32)
    assert fake.modes == [None]
    assert fake.calls == [(True, True)]  # compiled (first call) with freezing, under inference_mode
    assert torch._inductor.config.freezing is False
    assert isinstance(prepared.compile_s, float) and prepared.compile_s >= 0
    assert prepared.bn_remaining == 0 and prepared.fold_method == torch_backend.FOLD_FX
    prepared.run()  # later calls: freezing is off again globally
    assert fake.calls[-1][0] is False


def test_compile_without_freezing_and_mode_passed(monkeypatch):
    fake = FakeCompile()
    monkeypatch.setattr(torch, "compile", fake)
    config = RunConfig.preset("compile_cl", compile_mode="max-autotune")
    prepared = prep.prepare(Toy(), config, default_resolution=32)
    assert fake.modes == ["max-autotune"] and fake.calls == [(False, True)]
    assert fake.dynamic == [False]  # static shapes: no automatic-dynamic kernels
    assert prepared.compile_s is not None
    assert prep.prepare(Toy(), EAGER, default_resolution=32).compile_s is None


def test_freezing_restored_when_compilation_fails(monkeypatch):
    monkeypatch.setattr(torch, "compile", FakeCompile(fail=ValueError("inductor bug")))
    with pytest.raises(ValueError, match="inductor bug"):
        prep.prepare(Toy(), RunConfig.preset("max"), default_resolution=32)
    assert torch._inductor.config.freezing is False


def test_out_of_memory_while_compiling_gives_retry_advice(monkeypatch):
    monkeypatch.setattr(torch, "compile", FakeCompile(fail=MemoryError()))
    with pytest.raises(RexbenchError, match="out of memory on cpu while running compilation"):
        prep.prepare(Toy(), RunConfig.preset("compile", batch_size=8), default_resolution=32)
