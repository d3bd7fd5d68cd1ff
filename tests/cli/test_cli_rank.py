"""`rexbench rank study` and `rexbench rank features`: real invocations, exit codes, files written."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from torch import nn

import rexbench
import rexbench.rank.study
from rexbench.cli import run

STUDY = ["rank", "study", "-n", "2", "--ratios", "0.25,1.0", "--blocks", "a", "--blocks", "d"]
STUDY += ["--activations", "relu,none", "--d-out", "8", "12", "--spatial", "4"]


def test_study_json_and_figure(tmp_path, capsys) -> None:
    fig = tmp_path / "figure1.png"
    assert run([*STUDY, "--json", "--out", str(fig)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["blocks"] == ["conv1x1", "ib_dw3x3"]
    assert data["config"]["ratios"] == [0.25, 1.0]
    assert len(data["d_out"]) == 2 and all(8 <= d <= 12 for d in data["d_out"])
    # linear 1x1 conv at ratio 1.0: rank = d_in = d_out for every network
    assert data["ranks"]["conv1x1"]["none"][1] == data["d_out"]
    assert [v["key"] for v in data["observations"]] == ["i", "ii", "iii"]
    assert data["figure"] == str(fig) and fig.stat().st_size > 0


def test_study_table_and_verdicts(capsys) -> None:
    assert run(STUDY) == 0
    out = capsys.readouterr().out
    assert "mean over 2 networks" in out and "ReLU" in out and "0.25" in out
    assert "(i)" in out and "(ii)" in out and "(iii)" in out
    assert "reading: " in out and "seed 0" in out


def test_study_defaults_are_the_default_reading(capsys) -> None:
    from rexbench.rank.readings import DEFAULT_READING

    assert run([*STUDY, "--json"]) == 0
    reading = json.loads(capsys.readouterr().out)["config"]["reading"]
    expected = DEFAULT_READING.to_dict() | {"d_out_range": [8, 12], "spatial": 4}
    assert reading == expected


def test_study_reading_options_reach_the_study(capsys) -> None:
    args = ["--rank-measure", "erank", "--matrix", "pooled", "--inputs", "relu", "--n-ratio", "3"]
    args += ["--bn", "none", "--bn-mode", "eval", "--init", "torch", "--dtype", "fp64", "--centre"]
    assert run([*STUDY, *args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["reading"] | {"d_out_range": None} == {
        "measure": "erank",
        "matrix": "pooled",
        "inputs": "relu",
        "n_ratio": 3.0,
        "bn": "none",
        "bn_mode": "eval",
        "init": "torch",
        "dtype": "fp64",
        "d_out_range": None,
        "spatial": 4,
        "centre": True,
    }
    # an effective rank is a real number between 1 and the rank; the linear 1x1 conv keeps d_in
    erank = data["ranks"]["conv1x1"]["none"]
    assert any(v != round(v) for per_net in erank for v in per_net)
    assert all(1.0 <= v <= d + 1e-9 for v, d in zip(erank[1], data["d_out"], strict=True))
    assert len(data["reference"]) == 2


def test_study_table_names_a_soft_measure(capsys) -> None:
    assert run([*STUDY, "--rank-measure", "srank", "--spatial", "1"]) == 0
    out = capsys.readouterr().out
    assert "srank(f(WX)) / d_out" in out and "reading: srank (stable rank" in out


def test_same_seed_same_json(capsys) -> None:
    outputs = []
    for seed in ("3", "3", "4"):
        assert run([*STUDY, "--seed", seed, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        outputs.append((data["d_out"], data["ranks"]))
    assert outputs[0] == outputs[1] and outputs[0] != outputs[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ratios", "0,1"], "ratios must lie in (0, 1]"),
        (["--ratios", "half"], "--ratios: expected numbers"),
        (["--blocks", "z"], "unknown block 'z'"),
        (["--activations", "gelu"], "unknown activation 'gelu'"),
        (["--out", "figure.txt"], "ending in .png"),
        (["-n", "0"], "--networks must be at least 1"),
        (["--rank-measure", "trace"], "unknown rank measure 'trace'"),
        (["--rank-measure", "rank@3"], "must be a number in (0, 1)"),
        (["--matrix", "rows"], "matrix must be one of positions, pooled, per-position"),
        (["--n-ratio", "0.5"], "N / d_out must exceed 1"),
        (["--bn", "after"], "bn must be one of pre, post, none"),
    ],
)
def test_study_bad_input_is_one_line_exit_2(args, message, capsys) -> None:
    assert run([*STUDY, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rexbench: error:") and message in err[0]


def test_cuda_without_cuda_exits_2(monkeypatch, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run([*STUDY, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rexbench: error: --device cuda: CUDA is not available here; use --device cpu"]


def test_cuda_device_reaches_the_study(monkeypatch, capsys) -> None:
    seen = []
    real = rexbench.rank.study.run_study

    def fake(cfg, progress=None):
        seen.append(cfg.device)
        return real(replace(cfg, device="cpu"), progress)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(rexbench.rank.study, "run_study", fake)
    assert run([*STUDY, "--device", "cuda", "--json"]) == 0
    assert seen == ["cuda"]
    capsys.readouterr()


# --- features ---------------------------------------------------------------------------------


class ToyReXNet(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1), nn.SiLU(), nn.AdaptiveAvgPool2d(1)
        )
        self.output = nn.Sequential(nn.Dropout(0.2), nn.Conv2d(width, 10, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x)).flatten(1)


@pytest.fixture
def toy_zoo(monkeypatch):
    """`rexbench.create_model` builds toy_<width>; records the weights argument."""
    calls = []

    def create_model(name, weights=None, num_classes=1000):
        calls.append((name, weights))
        torch.manual_seed(0)
        return ToyReXNet(int(name.split("_")[1])).eval()

    monkeypatch.setattr(rexbench, "create_model", create_model)
    return calls


def test_features_json_and_cdf_plot(toy_zoo, tmp_path, capsys) -> None:
    fig = tmp_path / "cdf.svg"
    args = ["rank", "features", "toy_8", "toy_20", "--resolution", "16", "--count", "12"]
    assert run([*args, "--json", "--out", str(fig)]) == 0
    data = json.loads(capsys.readouterr().out)
    first, second = data["spectra"]
    assert (first["model"], first["layer"], first["images"], first["dim"]) == (
        "toy_8",
        "output.1",
        12,
        8,
    )
    assert (
        len(first["singular_values"]) == 8 and len(second["singular_values"]) == 12
    )  # min(n, dim)
    assert first["nuclear_norm"] == pytest.approx(sum(first["singular_values"]))
    assert 1 <= first["rank"] <= 8
    assert fig.read_text().startswith("<?xml") and toy_zoo == [("toy_8", None), ("toy_20", None)]
    assert first["random_weights"] is True and first["weights"] is None
    assert "RANDOM WEIGHTS (no checkpoint) for toy_8, toy_20" in fig.read_text()


def test_features_says_when_weights_are_random(toy_zoo, capsys) -> None:
    args = ["rank", "features", "toy_8", "--resolution", "16", "--count", "12"]
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "toy_8*" in out and "*: RANDOM weights (no checkpoint)" in out
    assert "random weights (no --weights checkpoint) for toy_8" in out


def test_features_table_from_an_image_folder(toy_zoo, tmp_path, capsys) -> None:
    from PIL import Image

    for i, size in enumerate([(40, 30), (20, 50), (64, 64)]):
        Image.new("RGB", size, color=(40 * i, 100, 200 - 50 * i)).save(tmp_path / f"img{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    weights = tmp_path / "w.pth"
    args = ["rank", "features", "toy_6", "--images", str(tmp_path), "--resolution", "16"]
    assert run([*args, "--weights", str(weights)]) == 0
    out = capsys.readouterr().out
    assert "toy_6" in out and "output.1" in out and f"images from {tmp_path}" in out
    assert "toy_6*" not in out and "random weights (no --weights" not in out
    assert toy_zoo == [("toy_6", str(weights))]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["toy_4", "toy_5", "--weights", "a.pth"], "give --weights once per model (2)"),
        (["toy_4", "--images", "/nonexistent/dir"], "not a directory"),
        (["toy_4", "--count", "0"], "--count must be at least 1"),
        (["toy_4", "--out", "cdf.jpeg"], "ending in .png"),
    ],
)
def test_features_bad_input_exit_2(toy_zoo, args, message, capsys) -> None:
    assert run(["rank", "features", *args, "--resolution", "16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_empty_image_folder_exit_2(toy_zoo, tmp_path, capsys) -> None:
    assert run(["rank", "features", "toy_4", "--images", str(tmp_path), "--resolution", "16"]) == 2
    assert "no image files" in capsys.readouterr().err


def test_importing_the_command_does_not_import_torch() -> None:
    code = "import sys, rexbench.cli.rank; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
