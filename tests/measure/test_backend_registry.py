"""The backend registry (rexbench.measure.backends.registry) and the protocol's generic parts
(backends/base.py): one namespace of names, unknown names with the closest ones, a backend's own
options checked and kept without their defaults, labels that never coincide for two
configurations, availability naming the extra to install."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from rexbench.errors import RexbenchError
from rexbench.measure.backends.base import Backend, Option, Preset
from rexbench.measure.backends.registry import BACKENDS, BackendRegistry
from rexbench.measure.config import COMPILE_MODES, PRESET_HELP, RunConfig


class Level(Backend):
    """A backend with options of every kind; never prepares anything."""

    name = "level"
    title = "Level"
    options = {
        "level": Option("all", "graph optimisation", choices=("basic", "all")),
        "scale": Option(1.0, "a number"),
        "fast": Option(False, "a switch"),
    }

    def presets(self):
        return (
            Preset("level"),
            Preset("level_basic", "basic level", {"options": {"level": "basic"}}),
        )

    def prepare(self, *args, **kwargs):
        raise AssertionError("not prepared in these tests")


@pytest.fixture
def level():
    BACKENDS.register(Level())
    yield
    BACKENDS.unregister("level")


def test_the_builtin_backends_and_presets_and_the_help_line():
    assert BACKENDS.names() == ["torch", "ort", "openvino", "pt2e"]
    torch_presets = ["eager", "channels_last", "compile", "compile_cl", "max", "cudagraphs"]
    runtimes = ["ort", "ort_int8", "openvino", "openvino_int8", "pt2e_int8"]
    assert BACKENDS.presets() == [*torch_presets, *runtimes]
    assert PRESET_HELP == (
        "eager, channels_last, compile, compile_cl (default), max (BN folded + freezing), "
        "cudagraphs (compile_cl replayed as CUDA graphs), ort (ONNX Runtime), "
        "ort_int8 (int8, static QDQ), openvino (OpenVINO), openvino_int8 (int8, NNCF), "
        "pt2e_int8 (int8, PT2E + torch.compile)"
    )
    assert BACKENDS.get(None) is BACKENDS.get("torch")
    assert RunConfig(runtime="torch") == RunConfig()  # one spelling: PyTorch is runtime None


def test_a_taken_or_malformed_name_is_refused_and_leaves_no_trace():
    registry = BackendRegistry()
    registry.register(Level())

    class Clash(Level):
        name = "other"

        def presets(self):
            return (Preset("other"), Preset("level_basic"))

    with pytest.raises(ValueError, match="'level_basic' is already registered"):
        registry.register(Clash())
    assert registry.names() == ["level"] and "other" not in registry.presets()

    class Bad(Level):
        name = "Bad+Name"

    with pytest.raises(ValueError, match="not a configuration name"):
        registry.register(Bad())
    with pytest.raises(ValueError, match="'level' is already registered"):
        registry.register(Level())


def test_unknown_names_are_one_line_with_the_closest():
    with pytest.raises(RexbenchError) as info:
        RunConfig.preset("compile_c1")
    assert str(info.value).startswith(
        "unknown configuration 'compile_c1' (did you mean compile_cl, compile?); "
        "choose from eager, channels_last"
    )
    with pytest.raises(RexbenchError, match=r"unknown runtime 'ortt' \(did you mean ort\?\); "):
        RunConfig(runtime="ortt", channels_last=False, compile=False)


def test_options_are_checked_and_kept_without_defaults(level):
    config = RunConfig.preset("level:scale=2:fast=true")
    assert config.options == (("fast", True), ("scale", 2.0))  # sorted; 2 read as the float 2.0
    assert config.label == "level:fast=true:scale=2.0"
    assert RunConfig.preset("level:level=all") == RunConfig.preset(
        "level"
    )  # a default is no option
    assert RunConfig.preset("level:level=basic").label == "level_basic"  # the preset's name
    assert RunConfig.from_dict(config.to_dict()) == config and config.to_dict()["options"] == {
        "fast": True,
        "scale": 2.0,
    }
    assert BACKENDS.get("level").option_values(config) == {
        "level": "all",
        "scale": 2.0,
        "fast": True,
    }
    for text, message in (
        (
            "level:levle=basic",
            "level has no option 'levle' (did you mean level?); its options: level, scale, fast",
        ),
        ("level:level=max", "level option level='max': expected 'basic', 'all'"),
        ("level:fast=1", "level option fast=1: expected bool"),
        ("level:scale", "--config level:scale: expected NAME:KEY=VALUE, got 'scale'"),
        ("eager:fast=true", "torch has no option 'fast'; its options: none"),
    ):
        with pytest.raises(RexbenchError) as info:
            RunConfig.preset(text)
        assert str(info.value) == message
    with pytest.raises(RexbenchError, match="prepares the model itself: channels_last, compile"):
        RunConfig(runtime="level")  # RunConfig's defaults are PyTorch's compile_cl


def test_a_label_reads_back_as_the_configuration_it_names(level):
    for text in ("level:scale=0.5", "level:fast=true:level=basic", "eager", "ort"):
        config = RunConfig.preset(text)
        assert RunConfig.preset(config.label) == config


def test_two_configurations_never_share_a_label(level):
    """Every preset and dtype, every PyTorch preparation and compile mode, options of a backend:
    one label per config_id (device, batch and threads, which have columns of their own, fixed)."""
    configs = [RunConfig.preset(p, dtype=d) for p in BACKENDS.presets() for d in ("fp32", "bf16")]
    for fold, cl, mode in itertools.product((False, True), (False, True), COMPILE_MODES):
        configs.append(RunConfig(fold_bn=fold, channels_last=cl, compile_mode=mode))
        configs.append(RunConfig(fold_bn=fold, channels_last=cl, compile=False))
        configs.append(RunConfig(fold_bn=fold, channels_last=cl, compile_mode=mode, freezing=True))
    for scale, fast in itertools.product((0.5, 1.0, 2.0), (False, True)):
        configs.append(RunConfig.preset("level", options={"scale": scale, "fast": fast}))
    ids = {c.label: c.config_id for c in configs}
    assert len(ids) == len({c.config_id for c in configs}) == len(set(ids.values()))
    assert len(ids) > 50  # the presets, every PyTorch combination, six option settings


def test_a_missing_package_names_the_extra_to_install(monkeypatch):
    ort = BACKENDS.get("ort")
    assert ort.available("cpu") is None and BACKENDS.get("torch").available("cpu") is None
    monkeypatch.setattr(ort, "module", "rexbench_missing_runtime")
    assert ort.available("cpu") == (
        "--config ort needs ONNX Runtime, which is not installed: pip install 'rexbench[ort]'"
    )
    with pytest.raises(RexbenchError, match=r"pip install 'rexbench\[ort\]'"):
        BACKENDS.check_available("ort", "cpu")


def test_listing_and_checking_configurations_imports_no_torch():
    code = (
        "import sys; from rexbench.measure.config import RunConfig; "
        "print(RunConfig.preset('ort').label, RunConfig().label, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ort", "compile_cl", "False"]
