"""rexbench.rank.readings and the blocks under each reading: inputs, BN, matrices, known ranks."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from rexbench.errors import RexbenchError
from rexbench.rank.blocks import _generator, _weight, block_maps, block_outputs
from rexbench.rank.measures import search_measures
from rexbench.rank.readings import Reading, feature_matrices, make_input, normalize
from rexbench.rank.study import StudyConfig, matrix_rank, run_measures, run_study


def _input(reading: Reading, shape: tuple[int, int, int, int], seed: int = 0) -> torch.Tensor:
    return make_input(reading, shape, torch.Generator().manual_seed(seed))


def test_reading_validation_is_one_line_user_errors() -> None:
    for changes, message in [
        ({"matrix": "rows"}, "matrix must be one of positions, pooled, per-position"),
        ({"inputs": "images"}, "inputs must be one of"),
        ({"bn": "after"}, "bn must be one of pre, post, none"),
        ({"bn_mode": "test"}, "bn_mode must be one of train, eval"),
        ({"init": "xavier"}, "init must be one of he, torch, normal"),
        ({"dtype": "fp16"}, "dtype must be one of fp32, fp64"),
        ({"n_ratio": 1.0}, "N / d_out must exceed 1"),
        ({"spatial": 0}, "spatial must be at least 1"),
        ({"d_out_range": (9, 3)}, "d_out range"),
        ({"measure": "trace"}, "unknown rank measure"),
    ]:
        with pytest.raises(RexbenchError, match=message):
            Reading(**changes)


def test_rows_images_label_and_description() -> None:
    base = Reading(n_ratio=2.0, spatial=8, matrix="positions")
    assert base.rows(40) == 80 and base.images(40) == 2  # ceil(80 / 64) images of 8x8
    assert replace(base, matrix="pooled").images(40) == 80  # one row per image
    assert Reading(n_ratio=1.25).rows(16) == 20
    changed = Reading(spatial=8, bn="none", measure="erank")
    assert changed.label() == "measure=erank bn=none spatial=8"
    assert changed.changes() == {"measure": "erank", "bn": "none", "spatial": 8}
    assert changed.label(changed) == "base"
    assert Reading().label() == "base"
    text = Reading(measure="rank@1e-3", centre=True).describe()
    assert text.startswith("rank@0.001 (numerical rank, tolerance 0.001 x sigma_max)")
    assert "centred" in text


def test_input_distributions() -> None:
    shape = (40, 6, 8, 8)
    gauss = _input(Reading(inputs="gaussian"), shape)
    assert gauss.dtype == torch.float32 and torch.equal(gauss, _input(Reading(), shape))
    assert _input(Reading(inputs="relu"), shape).min() >= 0
    uniform = _input(Reading(inputs="uniform"), shape)
    assert uniform.abs().max() <= math.sqrt(3) and 0.9 < float(uniform.std()) < 1.1
    low = _input(Reading(inputs="lowrank"), (200, 7, 1, 1))
    assert int(matrix_rank(low.flatten(1))) == 4  # ceil(7 / 2) latent channels
    smooth = _input(Reading(inputs="smooth"), shape)

    def neighbour_correlation(x: torch.Tensor) -> float:
        return float(
            torch.corrcoef(torch.stack([x[..., :-1].flatten(), x[..., 1:].flatten()]))[0, 1]
        )

    assert neighbour_correlation(smooth) > 0.5 > abs(neighbour_correlation(gauss)) + 0.4
    assert _input(Reading(dtype="fp64"), shape).dtype == torch.float64


def test_batch_norm_modes() -> None:
    x = 3.0 + 2.0 * torch.randn(64, 5, 4, 4, generator=torch.Generator().manual_seed(1))
    train = normalize(x, Reading(bn_mode="train"))
    assert train.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    torch.testing.assert_close(normalize(x, Reading(bn_mode="eval")), x / math.sqrt(1 + 1e-5))


def test_feature_matrices() -> None:
    maps = torch.randn(3, 4, 6, 5, 5, generator=torch.Generator().manual_seed(2))  # A, B, C, H, W
    positions = feature_matrices(maps, Reading(matrix="positions"), rows=70)
    assert positions.shape == (3, 1, 70, 6)
    assert torch.equal(positions[0, 0, 0], maps[0, 0, :, 0, 0])
    assert torch.equal(positions[0, 0, 26], maps[0, 1, :, 0, 1])  # image 1, row 0, column 1
    pooled = feature_matrices(maps, Reading(matrix="pooled"))
    assert pooled.shape == (3, 1, 4, 6) and torch.allclose(pooled[1, 0], maps[1].mean(dim=(2, 3)))
    per = feature_matrices(maps, Reading(matrix="per-position"))  # the diagonal's 5 positions
    assert per.shape == (3, 5, 4, 6) and torch.equal(per[2, 3], maps[2, :, :, 3, 3])
    centred = feature_matrices(maps + 5.0, Reading(matrix="pooled", centre=True))
    assert centred.mean(dim=-2).abs().max() < 1e-5


def test_linear_blocks_keep_the_input_rank_under_every_matrix_reading() -> None:
    x = _input(Reading(), (60, 3, 4, 4))
    for matrix in ("positions", "pooled"):
        out = block_outputs(
            "conv1x1", x, 20, ["none"], _generator(0, "m"), reading=Reading(matrix=matrix)
        )
        assert int(matrix_rank(out[0])) == 3
    per = block_outputs(
        "conv1x1", x, 20, ["none"], _generator(0, "m"), reading=Reading(matrix="per-position")
    )
    assert per.shape == (1, 4, 60, 20) and matrix_rank(per[0]).tolist() == [3] * 4
    low = _input(Reading(inputs="lowrank"), (60, 6, 4, 4))
    out = block_outputs("conv1x1", low, 20, ["none", "relu"], _generator(0, "m"))
    assert int(matrix_rank(out[0])) == 3 and int(matrix_rank(out[1])) == 20


def test_depthwise_ib_without_bn_loses_the_channels_its_centre_tap_kills() -> None:
    # The literal reading (N is the batch: 1x1 maps) without BN: a 3x3 depthwise conv on a 1x1 map
    # is a per-channel scale a_j (its centre tap), so relu(a_j relu(z_j)) = 0 wherever a_j < 0. The
    # IB's output spans the surviving relu(z_j) and the shortcut's x: rank n_pos + d_in < d_out. The
    # full 3x3 conv mixes channels and kills none: full rank.
    reading = Reading(spatial=1, bn="none", dtype="fp64")
    x = _input(reading, (200, 3, 1, 1))
    out = block_outputs("ib_dw3x3", x, 40, ["relu", "none"], _generator(0, "dw"), reading=reading)
    gen = _generator(0, "dw")
    _weight(gen, (40, 3, 1), x)  # the expansion, drawn first
    centre = _weight(gen, (40, 1, 3), x)[:, 0, 1, 1]
    n_pos = int((centre > 0).sum())
    assert 0 < n_pos < 37
    assert matrix_rank(out, rtol=1e-9).tolist() == [n_pos + 3, 3]
    full = block_outputs("ib_conv3x3", x, 40, ["relu"], _generator(0, "dw"), reading=reading)
    assert int(matrix_rank(full[0], rtol=1e-9)) == 40


def test_bn_placement_and_init() -> None:
    x = _input(Reading(), (8, 4, 4, 4))
    gen = _generator(0, "p")
    pre = block_maps("conv1x1", x, 10, ["relu"], gen, reading=Reading(bn="pre"))
    post = block_maps("conv1x1", x, 10, ["relu"], _generator(0, "p"), reading=Reading(bn="post"))
    assert pre.min() >= 0 and post.mean(dim=(1, 3, 4)).abs().max() < 1e-5  # BN after f centres
    for init, bound in (("torch", 1 / math.sqrt(36)), ("he", None), ("normal", None)):
        w = _weight(_generator(0, "w"), (5, 4, 3), x, init)
        if bound is not None:
            assert w.abs().max() <= bound
        assert w.shape == (5, 4, 3, 3)
    big = _weight(_generator(0, "w"), (5, 4, 3), x, "normal")
    assert torch.allclose(big / 6.0, _weight(_generator(0, "w"), (5, 4, 3), x, "he"))


def test_one_run_gives_every_measure_and_the_same_numbers_as_a_single_run() -> None:
    cfg = StudyConfig(
        networks=2,
        ratios=(0.25, 1.0),
        blocks=("conv1x1", "ib_dw3x3"),
        activations=("relu", "none"),
        reading=Reading(measure="rank", d_out_range=(8, 16), spatial=4),
    )
    results = run_measures(cfg, search_measures())
    assert list(results) == [m.name for m in search_measures()]
    assert results["erank"].config.reading.measure == "erank"
    single = run_study(cfg)
    assert single.ranks == results["rank"].ranks and single.inputs == results["rank"].inputs
    again = run_study(replace(cfg, reading=replace(cfg.reading, measure="srank")))
    assert again.ranks == results["srank"].ranks
    for block, per_act in results["srank"].ranks.items():
        for act, per_ratio in per_act.items():
            for ri, per_net in enumerate(per_ratio):
                for net, value in enumerate(per_net):
                    assert value <= results["rank"].ranks[block][act][ri][net] + 1e-6
