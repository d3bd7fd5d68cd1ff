"""Checkpoint loading: every format round-trips into identical logits; bad files give one clear line.

The reference layouts are the key lists in tests/data/state_dict_keys (one `key shape` line per
tensor of an official clovaai, timm or torchvision state dict): a file of random tensors with exactly
those keys and shapes must be detected as its format and load into the matching rexbench model, and
timm's ReXNet layout must convert to the official one and back.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from rexbench import create_model
from rexbench.errors import RexbenchError
from rexbench.models.checkpoints import (
    detect_format,
    load_checkpoint,
    official_to_timm,
    timm_to_official,
)

KEYS = Path(__file__).parents[1] / "data" / "state_dict_keys"
X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


pytestmark = pytest.mark.usefixtures("one_thread")


def key_file(name: str) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (KEYS / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, shape = line.split()
            rows.append((key, () if shape == "scalar" else tuple(map(int, shape.split("x")))))
    return rows


def random_state(rows: list[tuple[str, tuple[int, ...]]], seed: int = 1) -> dict[str, torch.Tensor]:
    """Random tensors for a key list; BatchNorm variances positive, counters integer."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in rows:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.1
    return state


def shapes(state: dict[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in state.items()]


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(X)


def with_random_weights(name: str) -> torch.nn.Module:
    model = create_model(name)
    model.load_state_dict(random_state(shapes(model.state_dict())))
    return model


def assert_same_state(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert list(state) == list(expected)
    assert all(torch.equal(state[k], expected[k]) for k in state)


# --- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rexnet_x1.0", "rexnet_x1.3", "rexnet_lite_x1.0", "rexnet_plain"])
def test_own_state_dict_round_trips(tmp_path: Path, name: str) -> None:
    source = with_random_weights(name)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    loaded = create_model(name, weights=tmp_path / "w.pth")
    assert torch.equal(logits(loaded), logits(source))


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("rexnet_x1.0", "official-rexnet_x1.0.txt"),
        ("rexnet_lite_x1.0", "official-rexnet_lite_x1.0.txt"),
    ],
)
def test_official_layout_loads_directly(tmp_path: Path, name: str, keys: str) -> None:
    """A file with exactly the official key list and shapes loads tensor for tensor."""
    official = random_state(key_file(keys))
    torch.save(official, tmp_path / "official.pth")
    assert_same_state(create_model(name, weights=tmp_path / "official.pth"), official)


def test_timm_rexnet_mapping_both_ways(tmp_path: Path) -> None:
    source = with_random_weights("rexnet_x1.0")
    exported = official_to_timm(source.state_dict(), source)
    assert shapes(exported) == key_file("timm-rexnet_100.txt")
    assert exported["head.fc.weight"].shape == (1000, 1280)
    torch.save(exported, tmp_path / "timm.pth")
    loaded = create_model("rexnet_100", weights=tmp_path / "timm.pth")
    assert torch.equal(logits(loaded), logits(source))
    # a file built from timm's key list imports, and exports back to the same tensors
    timm_state = random_state(key_file("timm-rexnet_100.txt"), seed=3)
    torch.save(timm_state, tmp_path / "timm2.pth")
    model = create_model("rexnet_x1.0", weights=tmp_path / "timm2.pth")
    back = official_to_timm(model.state_dict(), model)
    assert list(back) == list(timm_state)
    assert all(torch.equal(back[k], timm_state[k]) for k in back)
    assert list(timm_to_official(back, model)) == list(model.state_dict())


def test_timm_rexnet_mapping_any_width(tmp_path: Path) -> None:
    source = with_random_weights("rexnet_x1.75")
    torch.save({"state_dict": official_to_timm(source.state_dict(), source)}, tmp_path / "t.pth")
    assert torch.equal(
        logits(create_model("rexnet_x1.75", weights=tmp_path / "t.pth")), logits(source)
    )


BASELINES = [
    ("efficientnet_b0", "torchvision-efficientnet_b0.txt", "torchvision EfficientNet"),
    ("efficientnet_b3", "torchvision-efficientnet_b3.txt", "torchvision EfficientNet"),
    ("mobilenet_v2", "torchvision-mobilenet_v2.txt", "torchvision MobileNetV2"),
    ("mobilenet_v3_large", "torchvision-mobilenet_v3_large.txt", "torchvision MobileNetV3"),
    ("mobilenet_v3_small", "torchvision-mobilenet_v3_small.txt", "torchvision MobileNetV3"),
    ("efficientnet_lite0", "timm-efficientnet_lite0.txt", "timm EfficientNet"),
    ("mobilenet_v1", "timm-mobilenetv1_100.txt", "timm MobileNetV1"),
]


@pytest.mark.parametrize(("name", "keys", "fmt"), BASELINES)
def test_baseline_reference_layout_loads_directly(
    tmp_path: Path, name: str, keys: str, fmt: str
) -> None:
    """torchvision / timm state dicts (their exact key lists and shapes) load with no mapping."""
    reference = random_state(key_file(keys))
    assert detect_format(reference) == fmt
    torch.save(reference, tmp_path / "ref.pth")
    try:
        model = create_model(name, weights=tmp_path / "ref.pth")
    except ModuleNotFoundError as exc:  # the baseline module is written by another developer
        pytest.skip(f"{name}: model module not available yet ({exc})")
    assert_same_state(model, reference)
    direct = create_model(name)
    direct.load_state_dict(reference)
    assert torch.equal(logits(model), logits(direct))


@pytest.mark.parametrize(
    "keys",
    ["official-rexnet_x1.0.txt", "official-rexnet_lite_x1.0.txt", "timm-rexnet_100.txt"],
)
def test_detect_rexnet_formats(keys: str) -> None:
    expected = {
        "official-rexnet_x1.0.txt": "official ReXNet (clovaai)",
        "official-rexnet_lite_x1.0.txt": "official ReXNet-lite (clovaai)",
        "timm-rexnet_100.txt": "timm ReXNet",
    }[keys]
    assert detect_format(dict.fromkeys(k for k, _ in key_file(keys))) == expected


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"state_dict": sd},
        lambda sd: {"model": sd, "epoch": 3},
        lambda sd: {"state_dict_ema": sd, "optimizer": {"lr": 0.5}},
        lambda sd: {"model_ema": sd},
        lambda sd: {"checkpoint": 1, "model": {"state_dict": sd}},
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
        lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
        lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()},
    ],
    ids=[
        "state_dict",
        "model",
        "state_dict_ema",
        "model_ema",
        "nested",
        "module",
        "wrapped+module",
        "compiled",
    ],
)
def test_wrapped_and_prefixed(tmp_path: Path, wrap) -> None:
    source = with_random_weights("rexnet_lite_x1.0")
    torch.save(wrap(source.state_dict()), tmp_path / "w.pth")
    assert torch.equal(
        logits(create_model("rexnet_lite_x1.0", weights=tmp_path / "w.pth")), logits(source)
    )


def test_timm_wrapped_with_module_prefix(tmp_path: Path) -> None:
    source = with_random_weights("rexnet_x0.9")
    timm_state = {
        f"module.{k}": v for k, v in official_to_timm(source.state_dict(), source).items()
    }
    torch.save({"state_dict_ema": timm_state}, tmp_path / "w.pth")
    assert torch.equal(
        logits(create_model("rexnet_x0.9", weights=tmp_path / "w.pth")), logits(source)
    )


def test_legacy_checkpoint_without_bn_counters(tmp_path: Path) -> None:
    source = with_random_weights("rexnet_lite_x1.0")
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    assert torch.equal(
        logits(create_model("rexnet_lite_x1.0", weights=tmp_path / "old.pth")), logits(source)
    )


# --- files that do not fit ----------------------------------------------------------------------


def load_error(tmp_path: Path, name: str, obj: object = None, raw: bytes | None = None) -> str:
    path = tmp_path / "w.pth"
    if raw is not None:
        path.write_bytes(raw)
    elif obj is not None:
        torch.save(obj, path)
    with pytest.raises(RexbenchError) as info:
        create_model(name, weights=path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    message = load_error(tmp_path, "rexnet_x1.0")
    assert message == f"weights file not found: {tmp_path / 'w.pth'}"


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "w.pth").mkdir()
    assert "not a file" in load_error(tmp_path, "rexnet_x1.0")


@pytest.mark.parametrize("raw", [b"", b"not a checkpoint at all", b"PK\x03\x04 truncated zip"])
def test_corrupt_file(tmp_path: Path, raw: bytes) -> None:
    assert "not a readable PyTorch checkpoint" in load_error(tmp_path, "rexnet_x1.0", raw=raw)


def test_truncated_checkpoint(tmp_path: Path) -> None:
    torch.save(create_model("rexnet_lite_x1.0").state_dict(), tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    message = load_error(tmp_path, "rexnet_lite_x1.0", raw=data[: len(data) // 2])
    assert "not a readable PyTorch checkpoint" in message


@pytest.mark.parametrize(
    ("obj", "found"),
    [
        ({"epoch": 3, "best_acc": 0.5}, "a dict with keys epoch, best_acc"),
        (torch.zeros(3), "a single tensor of shape 3"),
        ([torch.zeros(3)], "a list"),
        ({}, "an empty dict"),
    ],
)
def test_not_a_state_dict(tmp_path: Path, obj: object, found: str) -> None:
    message = load_error(tmp_path, "rexnet_x1.0", obj=obj)
    assert f"not a state dict (found {found})" in message


class CarriesCode:
    """Unpickling this would call os.getcwd: harmless, but code all the same."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_code_carrying_pickle_is_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, "rexnet_x1.0", obj={"state_dict": CarriesCode()})
    assert "refused: the pickle references Python code" in message
    assert "getcwd" in message


def test_whole_module_pickle_is_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, "rexnet_lite_x1.0", obj=create_model("rexnet_lite_x1.0"))
    assert "refused" in message and "state_dict()" in message


def test_foreign_architecture(tmp_path: Path) -> None:
    """A MobileNetV2 checkpoint given to rexnet_x1.0: every key listed as missing/unexpected."""
    mnv2 = random_state(key_file("torchvision-mobilenet_v2.txt"))
    message = load_error(tmp_path, "rexnet_x1.0", obj=mnv2)
    assert "does not fit rexnet_x1.0 (detected format: torchvision MobileNetV2)" in message
    assert "413 missing: features.0.weight, features.1.weight, features.1.bias, ..." in message
    assert f"{len(mnv2)} unexpected: features.0.0.weight" in message
    assert "nothing was loaded" in message


def test_other_width(tmp_path: Path) -> None:
    """rexnet_x1.0 weights for rexnet_x1.3: same keys, every width-dependent tensor mis-shaped."""
    model = create_model("rexnet_x1.3")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(create_model("rexnet_x1.0").state_dict(), tmp_path / "w.pth")
    with pytest.raises(RexbenchError) as info:
        load_checkpoint(model, tmp_path / "w.pth", "rexnet_x1.3")
    message = str(info.value)
    assert "detected format: official ReXNet (clovaai)" in message
    assert "missing" not in message and "unexpected" not in message
    assert "mis-shaped: features.0.weight (file 32x3x3x3, model 42x3x3x3)" in message
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_partial_checkpoint_is_rejected(tmp_path: Path) -> None:
    state = create_model("rexnet_lite_x1.0").state_dict()
    del state["output.4.bias"]
    state["extra.weight"] = torch.zeros(1)
    message = load_error(tmp_path, "rexnet_lite_x1.0", obj={"model": state})
    assert "1 missing: output.4.bias; 1 unexpected: extra.weight" in message
    assert "inside 'model'" in message


def test_timm_rexnet_into_lite_is_foreign(tmp_path: Path) -> None:
    message = load_error(
        tmp_path, "rexnet_lite_x1.0", obj=random_state(key_file("timm-rexnet_100.txt"))
    )
    assert "detected format: timm ReXNet" in message and "303 missing" in message
