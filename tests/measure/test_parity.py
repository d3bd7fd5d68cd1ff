"""Output parity: the numbers by hand, weights a check can see through, and a deliberately broken
preparation caught as invalid (in the record, the table, the exit code) while a correct one passes."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from _profile_fakes import fake_parts
from torch import nn

import rexbench.measure.backends.prepare as prep
import rexbench.measure.backends.torch as torch_backend
from rexbench.cli import run as cli
from rexbench.measure.checks import parity
from rexbench.measure.config import RunConfig
from rexbench.measure.run.profile import profile_models


def test_compare_by_hand():
    ref = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])  # ||ref|| = 5
    out = ref + torch.tensor([[0.0, 0.0, 0.003], [0.0, 0.004, 0.0]])  # ||diff|| = 0.005
    data = parity.compare(out, ref, "fp32")
    assert data["rel_l2"] == pytest.approx(1e-3) and data["max_abs_diff"] == pytest.approx(0.004)
    assert data["top1_agreement"] == 0.5  # row 2: a tie broken differently
    assert data["valid"] is (data["rel_l2"] <= 1e-3)
    wrong = parity.compare(ref * 1.1, ref, "fp32")
    assert not wrong["valid"] and wrong["rel_l2"] == pytest.approx(0.1)
    assert wrong["reason"] == "relative L2 error 0.1 > 0.001 (fp32 tolerance)"
    assert parity.compare(ref * 1.01, ref, "bf16")["valid"]  # 1e-2 < 1.6e-2
    assert not parity.compare(ref * 1.02, ref, "fp16")["valid"]
    for bad, reason in (
        (torch.full((2, 3), float("nan")), "the output is not finite"),
        (torch.zeros(3), "output shape [3] vs [2, 3]"),
    ):
        data = parity.compare(bad, ref, "fp32")
        assert not data["valid"] and data["reason"] == reason
    flat = parity.compare(torch.ones(2, 3), torch.ones(2, 3), "fp32")
    assert not flat["valid"] and "constant" in flat["reason"]
    assert "ONNX export tutorial" in data["tolerance"]["source"]


def test_one_tolerance_table_with_bf16_scaled_from_fp16_by_the_unit_roundoff():
    from torch.testing._comparison import default_tolerances

    # the per-operation tolerances the docstring cites: (rtol, atol)
    assert default_tolerances(torch.float16) == (1e-3, 1e-5)
    assert default_tolerances(torch.bfloat16) == (1.6e-2, 1e-5)
    ratio = torch.finfo(torch.bfloat16).eps / torch.finfo(torch.float16).eps  # 2^-7 / 2^-10
    assert ratio == 8
    assert parity.TOLERANCES == {"fp32": 1e-3, "fp16": 1.6e-2, "bf16": 0.128, "int8": 0.512}
    assert parity.TOLERANCES["bf16"] == parity.TOLERANCES["fp16"] * ratio
    ref = torch.tensor([[3.0, 4.0, 0.0]])
    assert parity.compare(ref * 1.12, ref, "bf16")["valid"]
    bad = parity.compare(ref * 1.13, ref, "bf16")
    assert bad["reason"] == "relative L2 error 0.13 > 0.128 (bf16 tolerance)"
    assert "unit roundoff" in bad["tolerance"]["source"]


def test_int8_tolerance_is_bf16_times_the_crest_factor_of_an_activation_tensor():
    # the same spacing: int8's scale is max / 127, bfloat16's eps 2^-7
    assert 2**-7 <= 1 / 127 < 1.01 * 2**-7 and torch.finfo(torch.bfloat16).eps == 2**-7
    # a Gaussian tensor of 10^4 to 10^5 values peaks near 4 standard deviations
    generator = torch.Generator().manual_seed(0)
    for size in (10_000, 100_000):
        x = torch.randn(size, generator=generator)
        assert 3.6 < float(x.abs().max() / x.pow(2).mean().sqrt()) < 4.6
    # and int8-rounding such a tensor costs about crest / (127 sqrt(12)) of its RMS, as bf16's
    # rounding costs about eps / sqrt(12) of each value
    x = torch.randn(50_000, generator=generator)
    scale = float(x.abs().max()) / 127
    noise = (torch.round(x / scale) * scale - x).norm() / x.norm()
    crest = float(x.abs().max() / x.pow(2).mean().sqrt())
    assert float(noise) == pytest.approx(crest / (127 * 12**0.5), rel=0.05)
    assert parity.TOLERANCES["int8"] == parity.TOLERANCES["bf16"] * 4
    ref = torch.tensor([[3.0, 4.0, 0.0]])
    assert parity.compare(ref * 1.5, ref, "int8")["valid"]
    bad = parity.compare(ref * 0.48, ref, "int8")  # rel L2 0.52
    assert bad["reason"] == "relative L2 error 0.52 > 0.512 (int8 tolerance)"
    assert "crest factor" in bad["tolerance"]["source"]


def test_int8_is_judged_by_the_fidelity_rel_l2_unless_the_check_failed_before_it():
    ref = torch.tensor([[3.0, 4.0, 0.0]])
    close = parity.compare(ref * 1.02, ref, "int8")  # the seeded input: rel L2 0.02
    parity.judge_by_fidelity(close, 0.6)  # the photographs: 0.6
    assert not close["valid"] and close["rel_l2"] == pytest.approx(0.02)
    assert close["reason"] == (
        "relative L2 error of the logits on the fidelity set's evaluation half 0.6 > 0.512 "
        "(int8 tolerance)"
    )
    assert parity.invalid_note(close).startswith("invalid: the output differs from the eager")
    far = parity.compare(ref * 1.6, ref, "int8")
    parity.judge_by_fidelity(far, 0.15)
    assert far["valid"] and far["reason"] is None
    broken = parity.compare(torch.full((1, 3), float("nan")), ref, "int8")
    parity.judge_by_fidelity(broken, 0.01)
    assert not broken["valid"] and broken["reason"] == "the output is not finite"


def test_nontrivial_weights_are_seeded_and_reach_batchnorm_and_zeroed_layers():
    def build():
        torch.manual_seed(1)
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
        net.eval()(torch.zeros(1, 3, 6, 6))
        nn.init.zeros_(net[3].weight)  # a zero-initialised classifier makes every output equal
        return net.eval()

    a, b = build(), build()
    assert torch.equal(a[1].running_var, torch.ones(4)) and not a[3].weight.any()
    text = parity.nontrivial_weights(a)
    parity.nontrivial_weights(b)
    assert text.startswith("random (seed 0): BatchNorm statistics and affine parameters of 1 layer")
    assert text.endswith("1 all-zero weight tensor(s) redrawn")
    bn = a[1]
    assert not torch.equal(bn.running_mean, torch.zeros(4))
    assert bool(((bn.running_var >= 0.8) & (bn.running_var <= 1.2)).all())
    assert a[3].weight.any() and torch.equal(a[3].weight, b[3].weight)  # same seed, same weights
    assert torch.equal(a[1].bias, b[1].bias)


CONV_BN = textwrap.dedent(
    """
    import torch
    from torch import nn


    class ConvBN(nn.Module):
        default_input_shape = (3, 16, 16)

        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            )
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            return self.fc(self.features(x).mean((2, 3)))
    """
)


@pytest.fixture
def conv_bn(tmp_path, monkeypatch):
    (tmp_path / "nets.py").write_text(CONV_BN)
    monkeypatch.chdir(tmp_path)
    return "py:nets.py:ConvBN"


@pytest.fixture
def broken_folding(monkeypatch):
    """A BN-folding bug: the BatchNorms are dropped instead of folded into the convolutions."""

    def drop(model):
        for seq in model.modules():
            for name, child in list(seq.named_children()):
                if isinstance(child, nn.BatchNorm2d):
                    setattr(seq, name, nn.Identity())
        return model, "dropped"

    monkeypatch.setattr(torch_backend, "fold_batchnorm", drop)


FOLDED = RunConfig.preset("eager", fold_bn=True)


def test_correct_folding_is_valid(conv_bn):
    args = {"runs": 2, "warmup": 0, "parts": fake_parts()}
    eager, folded = profile_models([conv_bn], [RunConfig.preset("eager"), FOLDED], **args)
    assert eager.parity["rel_l2"] == 0.0 and eager.valid
    assert folded.valid and 0 <= folded.parity["rel_l2"] < 1e-5
    assert folded.timing.preparation["bn_folded"] == 2


def test_a_broken_folding_is_caught_as_invalid(conv_bn, broken_folding):
    args = {"runs": 2, "warmup": 0, "parts": fake_parts()}
    eager, broken = profile_models([conv_bn], [RunConfig.preset("eager"), FOLDED], **args)
    assert eager.valid and not broken.valid
    assert broken.parity["rel_l2"] > 1e-2
    assert broken.parity["reason"].startswith("relative L2 error")
    assert broken.samples  # still timed and recorded, as invalid
    assert any(w.startswith("invalid: the output differs") for w in broken.warnings)
    # with the weights of a freshly built model (identity BatchNorms) the bug would go unseen
    from rexbench.models.factory import create_model
    from rexbench.spec import parse

    fresh = create_model(parse(conv_bn))
    prepared = prep.prepare(fresh, FOLDED, input_shape=(3, 16, 16))
    reference = parity.reference_output(fresh, FOLDED, (3, 16, 16))
    unseen = parity.check(prepared, reference, "initial")
    assert unseen["valid"] and unseen["rel_l2"] < 1e-3


def test_cli_marks_the_broken_configuration_and_exits_1_unless_allowed(
    conv_bn, broken_folding, capsys
):
    # --in-process: the broken folding is patched into this process; a worker would not see it
    args = [
        "profile",
        conv_bn,
        "--config",
        "eager,channels_last,max",
        "--runs",
        "2",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--in-process",
    ]
    code = cli(args)
    out = capsys.readouterr()
    assert code == 1
    assert "max (invalid)" in out.out and "INVALID" in out.out
    err = " ".join(out.err.split())
    assert "invalid: py:nets.py:ConvBN max: output differs from the eager fp32 model's" in err
    assert "exit 1 (--allow-mismatch: exit 0)" in err
    code = cli([*args, "--allow-mismatch", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    rows = {r["config"]: r for r in data["rows"]}
    assert not rows["max"]["valid"] and rows["max"]["speedup"] is None
    assert rows["max"]["parity"]["reason"].startswith("relative L2 error")
    assert rows["channels_last"]["valid"] and rows["channels_last"]["speedup"] is not None
