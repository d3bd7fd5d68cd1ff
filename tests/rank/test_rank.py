"""rexbench.rank.study (Figure 1 study), rank_observations (the paper's checks), rank_features, rank_plot."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from torch import nn

from rexbench.errors import RexbenchError
from rexbench.rank.features import find_classifier, penultimate_features, spectrum, synthetic_images
from rexbench.rank.observations import (
    check_expansion,
    check_lift,
    check_single_vs_ib,
    observations,
    score,
)
from rexbench.rank.plots import cdf_points, plot_spectra, plot_study
from rexbench.rank.readings import Reading
from rexbench.rank.study import (
    FP32_EPS,
    StudyConfig,
    _generator,
    block_outputs,
    default_rtol,
    matrix_rank,
    resolve_activations,
    resolve_blocks,
    run_study,
)

TINY = StudyConfig(
    networks=3,
    ratios=(0.25, 0.5, 1.0),
    blocks=("conv1x1", "ib_dw3x3"),
    activations=("relu", "silu", "none"),
    reading=Reading(measure="rank", d_out_range=(8, 24), spatial=4),
)


def _with_singular_values(rows: int, cols: int, values: list[float]) -> torch.Tensor:
    """A float32 matrix with exactly these singular values (random orthogonal factors)."""
    gen = torch.Generator().manual_seed(1)
    u, _ = torch.linalg.qr(torch.randn(rows, rows, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(cols, cols, generator=gen, dtype=torch.float64))
    s = torch.zeros(rows, cols, dtype=torch.float64)
    for i, value in enumerate(values):
        s[i, i] = value
    return (u @ s @ v.T).float()


# --- rank computation -------------------------------------------------------------------------


def test_default_rtol_is_torch_fp32_rule() -> None:
    assert default_rtol(100, 40) == 100 * 2**-23 == 100 * torch.finfo(torch.float32).eps
    assert torch.finfo(torch.float32).eps == FP32_EPS


def test_rank_of_exactly_low_rank_matrices() -> None:
    assert int(matrix_rank(_with_singular_values(20, 10, [5, 4, 3, 2, 1]))) == 5
    assert int(matrix_rank(torch.zeros(6, 4))) == 0
    assert int(matrix_rank(torch.eye(7))) == 7
    outer = torch.arange(1.0, 31.0).reshape(30, 1) @ torch.arange(1.0, 9.0).reshape(1, 8)
    assert int(matrix_rank(outer)) == 1


def test_near_singular_matrix_depends_on_the_tolerance() -> None:
    # 1e-9 is below fp32 noise: dropped by the default (20 * 1.19e-7 = 2.4e-6); 1e-3 is kept.
    a = _with_singular_values(20, 10, [1, 1, 1, 1e-3, 1e-9])
    assert int(matrix_rank(a)) == 4
    assert int(matrix_rank(a, rtol=1e-2)) == 3
    assert int(matrix_rank(a, rtol=1e-4)) == 4


def test_batched_rank() -> None:
    stack = torch.stack([_with_singular_values(12, 6, [1] * k) for k in (1, 3, 6)])
    assert matrix_rank(stack).tolist() == [1, 3, 6]


# --- blocks -----------------------------------------------------------------------------------


def test_linear_blocks_have_their_structural_rank() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=gen)  # N = 128 rows, d_in = 3
    out = block_outputs("conv1x1", x, 40, ["none"], _generator(0, "a"))
    assert out.shape == (1, 128, 40)
    assert int(matrix_rank(out[0])) == 3  # rank(WX) = d_in
    out = block_outputs("conv3x3", x, 40, ["none"], _generator(0, "b"))
    assert int(matrix_rank(out[0])) == 27  # a 3x3 conv sees 9 * d_in inputs per position


def test_relu_on_one_input_channel_has_rank_two() -> None:
    # relu(a x) = a+ x+ + a- x-; after BN every column is standardized x+ or x-: rank 2.
    x = torch.randn(64, 1, 1, 1, generator=torch.Generator().manual_seed(3))
    out = block_outputs("conv1x1", x, 20, ["relu", "none"], _generator(0, "c"))
    assert matrix_rank(out).tolist() == [2, 1]


def test_linear_inverted_bottleneck_rank() -> None:
    # IB = 1x1 d_in -> d_out, BN, 3x3 (full or depthwise) on d_out, BN, 1x1 d_out -> d_out, BN, + x on
    # the first d_in channels. Without f: the first BN centres the input (Xc, rank d_in); the 3x3 conv
    # sees the 9 zero-padded shifts of Xc (9 * d_in columns; depthwise too, channel j mixes them with
    # a_j (x) w_j); BNs and the projection stay in that span (plus centring); the shortcut adds x =
    # Xc + the constant column of its means. rank = min(9 * d_in + 1, d_out): 9 * 2 + 1 = 19 below
    # d_out = 40, and full rank 12 when d_out = 12. With a nonlinearity the 19-cap is gone.
    x = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(4))  # N = 128, d_in = 2
    for block in ("ib_conv3x3", "ib_dw3x3"):
        out = block_outputs(block, x, 40, ["none", "relu", "silu"], _generator(0, block))
        assert out.shape == (3, 128, 40)
        assert matrix_rank(out).tolist() == [19, 40, 40]
        out = block_outputs(block, x, 12, ["none"], _generator(0, block))
        assert matrix_rank(out).tolist() == [12]
        # a centred input has no mean column for the shortcut to add: 9 * d_in = 18
        centred = x - x.mean(dim=(0, 2, 3), keepdim=True)
        out = block_outputs(block, centred, 40, ["none"], _generator(0, block))
        assert matrix_rank(out).tolist() == [18]


def test_unknown_names_are_user_errors() -> None:
    assert resolve_blocks(["a", "D", "conv3x3", "a"]) == ("conv1x1", "ib_dw3x3", "conv3x3")
    assert resolve_activations(["LeakyReLU", "swish", "Hard-Swish", "linear"]) == (
        "leaky_relu",
        "silu",
        "hardswish",
        "none",
    )
    with pytest.raises(RexbenchError, match="unknown block 'e'"):
        resolve_blocks(["e"])
    with pytest.raises(RexbenchError, match="unknown activation 'gelu'"):
        resolve_activations(["gelu"])
    with pytest.raises(RexbenchError, match="networks"):
        StudyConfig(networks=0)
    with pytest.raises(RexbenchError, match="ratios"):
        StudyConfig(ratios=(0.0, 0.5))
    with pytest.raises(RexbenchError, match="d_out range"):
        Reading(d_out_range=(20, 10))


# --- the study --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> object:
    return run_study(TINY)


def test_tiny_study_end_to_end(tiny) -> None:
    assert len(tiny.d_out) == 3 and all(8 <= d <= 24 for d in tiny.d_out)
    for ri, ratio in enumerate(TINY.ratios):
        for net, d_out in enumerate(tiny.d_out):
            # the linear 1x1 conv has rank exactly d_in = round(ratio * d_out)
            assert tiny.ranks["conv1x1"]["none"][ri][net] == max(1, round(ratio * d_out))
    summary = tiny.summary()
    assert set(summary) == {"conv1x1", "ib_dw3x3"}
    stats = summary["conv1x1"]["relu"]
    assert set(stats) == {"mean", "std", "q10", "q90", "min", "max"}
    assert all(len(v) == 3 for v in stats.values())
    assert all(
        lo <= m <= hi for lo, m, hi in zip(stats["min"], stats["mean"], stats["max"], strict=True)
    )
    data = json.loads(json.dumps(tiny.to_dict()))
    assert data["config"]["networks"] == 3 and data["config"]["reading"]["measure"] == "rank"
    assert data["config"]["measure"].startswith("numerical rank, tolerance max(rows, cols)")
    # the input X measures d_in / d_out: the reference the lift is taken above
    assert tiny.inputs == tiny.ranks["conv1x1"]["none"]
    assert len(observations(TINY.ratios, tiny.curves(), tiny.reference())) == 3


def test_same_seed_same_numbers_other_seed_other_numbers(tiny) -> None:
    again = run_study(TINY)
    assert again.d_out == tiny.d_out and again.ranks == tiny.ranks
    other = run_study(replace(TINY, seed=1))
    assert other.d_out != tiny.d_out


def test_subset_of_blocks_and_activations_reproduces_the_full_study(tiny) -> None:
    part = run_study(replace(TINY, blocks=("ib_dw3x3",), activations=("silu",)))
    assert part.ranks["ib_dw3x3"]["silu"] == tiny.ranks["ib_dw3x3"]["silu"]


def test_progress_and_threads_restored() -> None:
    calls: list[tuple[int, int]] = []
    before = torch.get_num_threads()
    run_study(
        replace(TINY, networks=1, blocks=("conv1x1",)), progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert torch.get_num_threads() == before


def test_plot_study_has_one_panel_per_block(tiny, tmp_path) -> None:
    fig = plot_study(tiny, tmp_path / "sub" / "fig.png")
    # a panel per block (rows) and nonlinearity (columns): coinciding curves never hide each other
    assert len(fig.axes) == 2 * 2
    assert [ax.get_title() for ax in fig.axes[:2]] == ["ReLU", "SiLU"]
    reference, linear, silu = fig.axes[1].get_lines()
    assert (silu.get_label(), silu.get_marker()) == ("SiLU", "*")
    assert (linear.get_label(), linear.get_linestyle()) == ("none (linear)", ":")
    assert list(reference.get_xdata()) == list(TINY.ratios) and reference.get_label() == "input X"
    assert list(reference.get_ydata()) == tiny.reference()
    assert fig.axes[2].get_ylabel().startswith("(d) IB, dw 3x3")
    assert "rank(f(WX)) / d_out, mean over 3 random networks" in fig.texts[0].get_text()
    assert (tmp_path / "sub" / "fig.png").stat().st_size > 0
    with pytest.raises(RexbenchError, match="ending in"):
        plot_study(tiny, tmp_path / "fig.txt")


# --- observations on synthetic curves ---------------------------------------------------------

RATIOS = (0.2, 0.6, 1.0)


def _curves(block_factor: dict[str, float], act_factor: dict[str, float]) -> dict:
    """r(x) = x + b * a * (1 - x): lift b * a * (1 - x), drop from 1.0 to 0.2 = 0.8 * (1 - b * a)."""
    return {
        b: {a: [x + fb * fa * (1 - x) for x in RATIOS] for a, fa in act_factor.items()}
        for b, fb in block_factor.items()
    }


PAPER_LIKE = _curves(
    {"conv1x1": 1.0, "conv3x3": 0.75, "ib_conv3x3": 0.5, "ib_dw3x3": 0.25},
    {"relu6": 0.5, "silu": 1.0, "elu": 1.0, "none": 0.0},
)


def test_all_observations_hold_on_paper_like_curves() -> None:
    verdicts = observations(RATIOS, PAPER_LIKE)
    assert [v.holds for v in verdicts] == [True, True, True]
    # drop of (a): mean over relu6, silu, elu of 0.8 * (1 - a) = 0.8 * (0.5 + 0 + 0) / 3
    assert "a 0.133" in verdicts[0].details[0]
    # mean lift of relu6 over blocks and the ratios 0.2, 0.6: 0.5 * mean(b) 0.625 * mean(0.8, 0.4)
    assert "silu 0.375, elu 0.375, relu6 0.188" in verdicts[1].details[1]
    assert verdicts[2].details[0].startswith("mean lift above d_in/d_out: a 0.500, b 0.375")


def test_parts_score_and_lift_at_small_ratios_on_paper_like_curves() -> None:
    verdicts = observations(RATIOS, PAPER_LIKE)
    assert [v.parts for v in verdicts] == [(True, True, True), (True, True, True), (True,)]
    assert score(verdicts) == (3, 7, 7)
    # lift b * a * (1 - x), mean b = 0.625, mean a (nonlinear) = 5/6: 0.417 at 0.2, 0.208 at 0.6
    assert (
        verdicts[1].details[2]
        == "more lift at smaller ratios: yes (mean lift 0.417 at 0.2 vs 0.208 at 0.6)"
    )


def test_lift_above_a_reference_curve() -> None:
    # a soft measure: the input itself measures 0.15, 0.45, 0.8 instead of 0.2, 0.6, 1.0
    reference = [0.15, 0.45, 0.8]
    curves = {"conv1x1": {"silu": [0.18, 0.5, 0.85]}, "ib_dw3x3": {"silu": [0.16, 0.46, 0.8]}}
    assert check_lift(RATIOS, curves).holds is False  # below d_in/d_out
    lifted = check_lift(RATIOS, curves, reference)
    assert lifted.parts[0] is True
    assert lifted.details[0].startswith(
        "every nonlinear curve lies above the input's own measure: yes"
    )
    ib = check_single_vs_ib(RATIOS, curves, reference)
    assert ib.holds is True
    assert ib.details[0] == "mean lift above the input's own measure: a 0.040, d 0.010"
    # (i) fails on "IBs lose more" and (ii) on "more lift at smaller ratios": 1 observation, 3 of 5 parts
    assert score(observations(RATIOS, curves, reference)) == (1, 3, 5)


def test_expansion_fails_when_depthwise_loses_less() -> None:
    curves = _curves({"ib_conv3x3": 0.25, "ib_dw3x3": 0.5}, {"silu": 1.0})
    verdict = check_expansion(RATIOS, curves)
    assert verdict.holds is False
    assert "depthwise IB loses more than 3x3-conv IB: no (0.400 vs 0.600)" in verdict.details


def test_expansion_fails_when_a_block_keeps_full_rank() -> None:
    verdict = check_expansion(RATIOS, {"conv1x1": {"relu": [1.0, 1.0, 1.0]}})
    assert verdict.holds is False
    assert verdict.details[1] == "every block loses rank (drop >= 0.05): no"
    # a sliver of a drop (0.02 at the smallest ratio only) is not the paper's "harms the rank"
    sliver = check_expansion(RATIOS, {"conv1x1": {"relu": [0.98, 1.0, 1.0]}})
    assert sliver.holds is False and sliver.parts == (False,)
    visible = check_expansion(RATIOS, {"conv1x1": {"relu": [0.94, 1.0, 1.0]}})
    assert visible.holds is True and visible.parts == (True,)


def test_lift_fails_when_relu6_lifts_most_or_a_curve_is_below_the_diagonal() -> None:
    verdict = check_lift(RATIOS, _curves({"conv1x1": 1.0}, {"relu6": 1.0, "silu": 0.5}))
    assert verdict.holds is False and "SiLU/ELU lift more than ReLU6: no" in verdict.details[1]
    below = {"conv1x1": {"relu": [0.1, 0.7, 1.0]}}
    verdict = check_lift(RATIOS, below)
    assert verdict.holds is False and "smallest lift -0.100: a relu at 0.2" in verdict.details[0]


def test_single_vs_ib_fails_when_ib_lifts_more() -> None:
    curves = _curves({"conv1x1": 0.5, "ib_conv3x3": 0.75}, {"silu": 1.0, "none": 0.0})
    verdict = check_single_vs_ib(RATIOS, curves)
    assert verdict.holds is False
    assert verdict.details[0] == "mean lift above d_in/d_out: a 0.300, c 0.450"
    assert verdict.details[2].startswith("context, mean lift over the linear block")


def test_checks_not_testable_without_the_blocks_or_activations() -> None:
    only_linear = {"conv1x1": {"none": list(RATIOS)}}
    assert check_lift(RATIOS, only_linear).holds is None
    assert check_single_vs_ib(RATIOS, _curves({"conv1x1": 1.0}, {"silu": 1.0})).holds is None
    assert check_expansion((1.0,), {"conv1x1": {"silu": [1.0]}}).holds is None
    assert check_single_vs_ib(RATIOS, only_linear).status == "not tested"


# --- penultimate features ---------------------------------------------------------------------


class ToyReXNet(nn.Module):
    """ReXNet's head layout: features end in global pooling; output = Dropout, 1x1 conv classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.output = nn.Sequential(nn.Dropout(0.2), nn.Conv2d(8, 5, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x)).flatten(1)


class ToyTorchvision(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.classifier = nn.Sequential(
            nn.Linear(6, 4), nn.Hardswish(), nn.Dropout(), nn.Linear(4, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ToyTimm(ToyTorchvision):
    """timm's API: get_classifier() names the classifier even if another Linear is registered later."""

    def __init__(self) -> None:
        super().__init__()
        self.aux = nn.Linear(3, 2)

    def get_classifier(self) -> nn.Module:
        return self.classifier[0]


def test_find_classifier_for_each_layout() -> None:
    assert find_classifier(ToyReXNet())[0] == "output.1"
    assert find_classifier(ToyTorchvision())[0] == "classifier.3"
    assert find_classifier(ToyTimm())[0] == "classifier.0"
    with pytest.raises(RexbenchError, match="no Linear or Conv2d"):
        find_classifier(nn.Sequential(nn.ReLU()))


def test_penultimate_features_are_the_classifier_input() -> None:
    torch.manual_seed(0)
    model = ToyReXNet().train()
    images = synthetic_images(5, 16, seed=2)
    layer, feats = penultimate_features(model, images, batch_size=2)
    assert layer == "output.1" and feats.shape == (5, 8)
    with torch.no_grad():
        expected = model.eval().features(images).flatten(1)
    torch.testing.assert_close(feats, expected)
    assert model.training is False  # restored to what it was when called (eval, set just above)
    layer, feats = penultimate_features(ToyTorchvision(), images)
    assert layer == "classifier.3" and feats.shape == (5, 4)


def test_synthetic_images_are_seeded() -> None:
    a, b, c = synthetic_images(2, 32, 0), synthetic_images(2, 32, 0), synthetic_images(2, 32, 1)
    assert a.shape == (2, 3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)


def test_spectrum_of_a_known_matrix() -> None:
    feats = torch.tensor([[3.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 1.0, 0]])
    spec = spectrum("toy", "fc", feats)
    assert spec.singular_values == pytest.approx([3.0, 2.0, 1.0])
    assert spec.nuclear_norm == pytest.approx(6.0) and spec.rank == 3
    assert spec.normalized() == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert spectrum("toy", "fc", feats, rtol=0.4).rank == 2
    assert cdf_points([1.0, 0.25, 0.5, 0.75]) == ([0.25, 0.5, 0.75, 1.0], [0.25, 0.5, 0.75, 1.0])
    trained = spectrum("toy2", "fc", 2 * feats)
    trained.weights = "toy2.pth"
    fig = plot_spectra([spec, trained])
    left, right = fig.axes
    assert len(left.get_lines()) == 2 and len(right.get_lines()) == 2
    assert [t.get_text() for t in left.get_legend().get_texts()] == [
        "toy (n=3, random init)",
        "toy2 (n=3, checkpoint)",
    ]
    assert "RANDOM WEIGHTS (no checkpoint) for toy:" in fig.texts[0].get_text()


def test_feature_cdf_axis_shows_values_far_below_the_largest() -> None:
    # a random-init spectrum: one dominant value, the rest below 1e-3 of it; a linear 0..1 axis
    # drew all of them at x < 0.07
    feats = torch.diag(torch.tensor([1.0, 1e-3, 5e-4, 1e-4]))
    fig = plot_spectra([spectrum("rand", "fc", feats)])
    left, right = fig.axes
    assert left.get_xscale() == "log" and left.get_xlim()[0] <= 1e-4 / 2 * 1.0001
    assert right.get_yscale() == "log"
    assert list(right.get_lines()[0].get_xdata()) == [0.25, 0.5, 0.75, 1.0]


def test_load_model_seeds_random_init_without_touching_the_global_rng(monkeypatch) -> None:
    import rexbench
    from rexbench.rank.features import load_model

    monkeypatch.setattr(rexbench, "create_model", lambda name, weights=None: nn.Linear(4, 3))
    state = torch.random.get_rng_state()
    label, first, res = load_model("toy", seed=5)
    assert (label, res) == ("toy", 224)  # not a zoo name: shown as typed, default resolution
    assert torch.equal(first.weight, load_model("toy", seed=5)[1].weight)
    assert not torch.equal(first.weight, load_model("toy", seed=6)[1].weight)
    assert torch.equal(torch.random.get_rng_state(), state)
