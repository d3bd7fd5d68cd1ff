"""RunConfig (rexbench/measure/config.py): presets, labels, config_id, JSON round trip, validation."""

import json

import pytest

from rexbench.errors import RexbenchError
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.config import DEFAULT_PRESET, RunConfig


def test_default_is_compile_channels_last():
    config = RunConfig()
    assert config.compile and config.channels_last and not config.fold_bn and not config.freezing
    assert config.label == DEFAULT_PRESET == "compile_cl"
    assert config.allow_tf32 is False and config.dtype == "fp32"


@pytest.mark.parametrize("name", BACKENDS.presets())
def test_every_preset_is_labelled_by_its_name(name):
    assert RunConfig.preset(name).label == name


def test_max_preset_is_fold_cl_compile_freezing():
    config = RunConfig.preset("max")
    assert (config.fold_bn, config.channels_last, config.compile, config.freezing) == (
        True,
        True,
        True,
        True,
    )


def test_preset_batch_size_follows_device_and_overrides_apply():
    assert RunConfig.preset("eager").batch_size == 1
    assert RunConfig.preset("eager", device="cuda").batch_size == 64
    assert RunConfig.preset("eager", device="cuda:1", batch_size=8).batch_size == 8


def test_composed_labels():
    assert RunConfig(dtype="bf16").label == "compile_cl+bf16"
    assert RunConfig(compile_mode="max-autotune").label == "cl+compile:max-autotune"
    assert RunConfig(compile=False, fold_bn=True).label == "fold_bn+cl+eager"
    assert RunConfig(channels_last=False, freezing=True).label == "compile+freezing"


def test_config_id_ignores_sample_counts_and_cuda_switches_on_cpu():
    base = RunConfig()
    assert len(base.config_id) == 12
    assert RunConfig(runs=10, warmup=0).config_id == base.config_id
    assert RunConfig(cudnn_benchmark=False, allow_tf32=True).config_id == base.config_id
    assert RunConfig(threads=1).config_id != base.config_id
    eager = RunConfig.preset("eager")
    assert RunConfig.preset("eager", compile_mode="max-autotune").config_id == eager.config_id
    assert RunConfig.preset("eager", compile_mode="max-autotune").label == "eager"
    assert RunConfig(compile_mode="max-autotune").config_id != base.config_id
    assert RunConfig(batch_size=2).config_id != base.config_id
    cuda = RunConfig(device="cuda")
    assert RunConfig(device="cuda", allow_tf32=True).config_id != cuda.config_id
    assert cuda.config_id != base.config_id


def test_json_round_trip():
    config = RunConfig.preset("max", threads=2, resolution=256, runs=50)
    data = json.loads(json.dumps(config.to_dict()))
    assert RunConfig.from_dict(data) == config
    assert RunConfig.from_dict({"device": "cpu"}) == RunConfig()


def test_from_dict_refuses_unknown_fields():
    with pytest.raises(RexbenchError, match="unknown run-config field"):
        RunConfig.from_dict({"warp_speed": 9})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dtype": "fp8"}, "unknown dtype"),
        ({"device": "gpu"}, "unknown device"),
        ({"compile_mode": "fast"}, "unknown compile mode"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"runs": 0}, "runs must be"),
        ({"warmup": -1}, "warmup must be"),
        ({"threads": 0}, "threads must be"),
        ({"resolution": True}, "resolution must be"),
        ({"compile": False, "freezing": True}, "freezing needs torch.compile"),
    ],
)
def test_invalid_configs_raise_one_line_errors(kwargs, message):
    with pytest.raises(RexbenchError, match=message):
        RunConfig(**kwargs)


def test_unknown_preset():
    with pytest.raises(RexbenchError, match="choose from eager, channels_last"):
        RunConfig.preset("fastest")


def test_input_shape_field_keeps_old_ids_and_round_trips():
    base = RunConfig.preset("eager")
    assert "input_shape" in base.to_dict() and base.input_shape is None
    shaped = RunConfig.preset("eager", input_shape=[1, 28, 28])
    assert shaped.input_shape == (1, 28, 28) and shaped.to_dict()["input_shape"] == [1, 28, 28]
    assert shaped.config_id != base.config_id
    assert RunConfig.from_dict(json.loads(json.dumps(shaped.to_dict()))) == shaped
    # an id computed before the fields existed: the same dict without them
    import hashlib

    # runtime, flush_l2 and options: added later, None / off / empty here
    later = ("runs", "warmup", "input_shape", "flush_l2", "runtime", "options")
    old = {k: v for k, v in base.to_dict().items() if k not in later}
    old = {
        k: v for k, v in old.items() if k not in ("cudnn_benchmark", "allow_tf32", "compile_mode")
    }
    blob = json.dumps(old, sort_keys=True, separators=(",", ":"))
    assert base.config_id == hashlib.sha256(blob.encode()).hexdigest()[:12]
    with pytest.raises(RexbenchError, match="either a resolution or an input shape"):
        RunConfig(resolution=224, input_shape=(3, 224, 224))
    with pytest.raises(RexbenchError, match="input_shape must be"):
        RunConfig(input_shape=(3, 0, 224))


def test_runtime_presets_are_their_own_configurations():
    ort, ov = RunConfig.preset("ort"), RunConfig.preset("openvino", dtype="bf16")
    assert (ort.label, ov.label) == ("ort", "openvino+bf16")
    assert ort.preset_name == "ort" and not ort.compile and not ort.channels_last
    eager = RunConfig.preset("eager")
    assert len({eager.config_id, ort.config_id, RunConfig.preset("openvino").config_id}) == 3
    assert RunConfig.from_dict(json.loads(json.dumps(ort.to_dict()))) == ort
    # a torch configuration's dict says runtime None, and its id is the one it always had
    assert eager.to_dict()["runtime"] is None
