"""The label and config_id of every preset, dtype and device, as literals: stored records and
baselines are matched by them, so no refactoring of how configurations are described may change one.
Also: every record committed to this repository still reads back with the id and label it was
stored under."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rexbench.errors import RexbenchError
from rexbench.measure.config import RunConfig

# (preset, device) -> [(label, config_id) for fp32, fp16, bf16], computed once before the backend
# protocol existed. Never edit a value here: a changed id orphans every record stored under it.
IDS = {
    ("eager", "cpu"): [("eager", "aa7770f2c1a8"), ("eager+fp16", "42491daf01e2"), ("eager+bf16", "2deaa7e5d266")],
    ("channels_last", "cpu"): [("channels_last", "e21fc1934752"), ("channels_last+fp16", "03dc911ac510"), ("channels_last+bf16", "252f7755515b")],
    ("compile", "cpu"): [("compile", "d3acb97f8723"), ("compile+fp16", "d366b467984d"), ("compile+bf16", "4be3b5aee092")],
    ("compile_cl", "cpu"): [("compile_cl", "84fad6bd21af"), ("compile_cl+fp16", "b0965f4ca573"), ("compile_cl+bf16", "ebb8a5dcfd95")],
    ("max", "cpu"): [("max", "4be54254c92f"), ("max+fp16", "bcf8cca9bfad"), ("max+bf16", "88a171be15d1")],
    ("ort", "cpu"): [("ort", "b3da5c9d14bf"), ("ort+fp16", "3ab926472dbc"), ("ort+bf16", "8b8fed748f4e")],
    ("openvino", "cpu"): [("openvino", "193e6db67804"), ("openvino+fp16", "86313512df07"), ("openvino+bf16", "81b6ee9921b4")],
    ("cudagraphs", "cpu"): [("cudagraphs", "3cfdcc1d9ad8"), ("cudagraphs+fp16", "e3a32b51813f"), ("cudagraphs+bf16", "f5dd48d0e883")],
    # int8 (added with the quantizing presets; fp16 and bf16 are refused when prepared)
    ("ort_int8", "cpu"): [("ort_int8", "0b509e1088b1"), ("ort_int8+fp16", "2139c5ca4b28"), ("ort_int8+bf16", "32fc1fa799d4")],
    ("openvino_int8", "cpu"): [("openvino_int8", "771fadddd5d8"), ("openvino_int8+fp16", "913002b2ea5f"), ("openvino_int8+bf16", "28fdae844e68")],
    ("pt2e_int8", "cpu"): [("pt2e_int8", "8723c637f23f"), ("pt2e_int8+fp16", "ae100f997ede"), ("pt2e_int8+bf16", "fcf8a7e9f9e7")],
    ("eager", "cuda"): [("eager", "56e92e316edc"), ("eager+fp16", "b92a2db4644f"), ("eager+bf16", "62b8f2a317fc")],
    ("channels_last", "cuda"): [("channels_last", "0d4f90272ffe"), ("channels_last+fp16", "fdb2d853ef7d"), ("channels_last+bf16", "8fff3b401479")],
    ("compile", "cuda"): [("compile", "2d077878df1a"), ("compile+fp16", "8b577d011362"), ("compile+bf16", "ac14f642ecc3")],
    ("compile_cl", "cuda"): [("compile_cl", "dfc51db64136"), ("compile_cl+fp16", "f6d7f62789ba"), ("compile_cl+bf16", "3a2ebf515380")],
    ("max", "cuda"): [("max", "bee0a27ddb66"), ("max+fp16", "88c44492a3a9"), ("max+bf16", "f1054b6ac046")],
    ("ort", "cuda"): [("ort", "cdb39a8aa6f9"), ("ort+fp16", "63b6daaff912"), ("ort+bf16", "b5e6f1e3c3fc")],
    ("cudagraphs", "cuda"): [("cudagraphs", "fc736b6f2e50"), ("cudagraphs+fp16", "7bcd8bd484e7"), ("cudagraphs+bf16", "d62f0e7431c7")],
}  # fmt: skip
# Configurations that are not presets (switches of `profile`, other fields): label and id.
COMPOSED = [
    (dict(compile_mode="max-autotune"), "cl+compile:max-autotune", "f55d37dca00f"),
    (dict(compile=False, fold_bn=True), "fold_bn+cl+eager", "281ca5906239"),
    (dict(channels_last=False, freezing=True), "compile+freezing", "1ba26a938d32"),
    (dict(threads=2), "compile_cl", "734b615a93d9"),
    (dict(input_shape=(1, 28, 28)), "compile_cl", "6bf239baa8f8"),
    (dict(resolution=160, batch_size=8), "compile_cl", "bd7906e87628"),
    (dict(device="cuda", flush_l2=True), "compile_cl", "280e454e3de6"),
    (dict(device="cuda:1", allow_tf32=True), "compile_cl", "d52a9f409923"),
]  # fmt: skip
DTYPES = ("fp32", "fp16", "bf16")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("preset, device", list(IDS))
def test_every_preset_keeps_its_label_and_id(preset, device):
    got = [RunConfig.preset(preset, device=device, dtype=d) for d in DTYPES]
    assert [(c.label, c.config_id) for c in got] == IDS[preset, device]


def test_openvino_on_cuda_stays_refused():
    for dtype in DTYPES:
        with pytest.raises(RexbenchError, match="OpenVINO's CPU device only: use --device cpu"):
            RunConfig.preset("openvino", device="cuda", dtype=dtype)


def test_int8_presets_are_their_backends_options_and_refuse_cuda():
    assert RunConfig.preset("ort:quantize=int8").label == "ort_int8"
    assert RunConfig.preset("openvino:quantize=int8").config_id == "771fadddd5d8"
    assert RunConfig.preset("ort_int8:quantize=none").config_id == "b3da5c9d14bf"  # plain ort
    for name in ("ort_int8", "pt2e_int8"):
        with pytest.raises(
            RexbenchError, match=f"^--config {name} runs on the CPU: use --device cpu$"
        ):
            RunConfig.preset(name, device="cuda")


@pytest.mark.parametrize("fields, label, config_id", COMPOSED)
def test_composed_configurations_keep_their_label_and_id(fields, label, config_id):
    config = RunConfig(**fields)
    assert (config.label, config.config_id) == (label, config_id)


def _committed_records() -> list[Path]:
    return sorted(p for folder in ("results", "baselines") for p in (ROOT / folder).rglob("*.json"))


def test_committed_records_keep_their_label_and_id():
    seen = 0
    for path in _committed_records():
        data = json.loads(path.read_text())
        run = data.get("run") if isinstance(data, dict) else None
        if not isinstance(run, dict) or "config" not in run:
            continue
        config = RunConfig.from_dict(run["config"])
        assert (config.label, config.config_id) == (run["label"], run["config_id"]), path
        seen += 1
    assert seen >= 40  # results/ holds the runtime comparison's records, among others
