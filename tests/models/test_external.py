"""External model specs: timm:, torchvision:, py: parsing, building, provenance,
and input shapes. The timm/torchvision tests run only where those libraries import; the rest need torch.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
from pathlib import Path

import pytest
import torch
from _external import require

import rexbench
from rexbench.errors import RexbenchError
from rexbench.models.provenance import provenance, source_hash
from rexbench.models.shapes import (
    check_options,
    default_input_shape,
    format_shape,
    parse_input_shape,
    resolve_input_shape,
)
from rexbench.registry import MODELS
from rexbench.spec import ModelSpec, parse, parse_value, py_target, timm_name_tag

TINY = """
from torch import nn


class Tiny(nn.Module):
    def __init__(self, width=1.0, num_classes=1000):
        super().__init__()
        self.conv = nn.Conv2d(3, int(8 * width), 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(int(8 * width), num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).flatten(1))


def build(width: float = 1.0, num_classes: int = 1000):
    return Tiny(width, num_classes)


build.default_input_shape = (3, 32, 32)


def build_fixed(width=1.0):
    return Tiny(width, 7)


def build_gray():
    model = Tiny()
    model.conv = nn.Conv2d(1, 8, 3)
    model.default_input_shape = "1x28x28"
    return model


def build_cfg():
    model = Tiny()
    model.pretrained_cfg = {"input_size": (3, 96, 96)}
    return model


def build_bad_shape():
    model = Tiny()
    model.default_input_shape = (3, 0, 32)
    return model


def broken(width=1.0):
    raise ValueError("width must be positive")


def not_a_module():
    return 42


def the_class():
    return Tiny


NOT_CALLABLE = 3
"""


def one_line_error(spec: str, **kwargs) -> str:
    with pytest.raises(RexbenchError) as info:
        rexbench.create_model(spec, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tiny.py in a temporary working directory."""
    path = tmp_path / "tiny.py"
    path.write_text(TINY)
    monkeypatch.chdir(tmp_path)
    return path


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "source", "name", "kwargs", "canonical"),
    [
        ("timm:resnet50", "timm", "resnet50", (), "timm:resnet50"),
        ("TIMM:ResNet50.A1_in1k", "timm", "resnet50.a1_in1k", (), "timm:resnet50.a1_in1k"),
        (
            "torchvision:mobilenet_v3_small?dropout=0.5",
            "torchvision",
            "mobilenet_v3_small",
            (("dropout", 0.5),),
            "torchvision:mobilenet_v3_small?dropout=0.5",
        ),
        (
            "py:pkg.mod:build?width=1.5&num_classes=10",
            "py",
            "pkg.mod:build",
            (("num_classes", 10), ("width", 1.5)),
            "py:pkg.mod:build?num_classes=10&width=1.5",
        ),
        (
            " py:./nets/../nets/tiny.py:Net.create ? b = 1e3 & a=TRUE ",
            "py",
            "nets/tiny.py:Net.create",
            (("a", True), ("b", 1000.0)),
            "py:nets/tiny.py:Net.create?a=True&b=1000.0",
        ),
        ("py:/abs/dir/net.py:f", "py", "/abs/dir/net.py:f", (), "py:/abs/dir/net.py:f"),
        (
            "py:m:f?act='10'&mode=\"true\"&name=relu&empty=''&x=none",
            "py",
            "m:f",
            (("act", "10"), ("empty", ""), ("mode", "true"), ("name", "relu"), ("x", None)),
            "py:m:f?act='10'&empty=''&mode='true'&name=relu&x=None",
        ),
    ],
)
def test_parse_canonical_round_trip(text, source, name, kwargs, canonical):
    spec = parse(text)
    assert spec == ModelSpec(source, name, kwargs)
    assert str(spec) == canonical
    assert parse(str(spec)) == spec
    assert [type(v) for _, v in parse(canonical).kwargs] == [type(v) for _, v in kwargs]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", 10),
        ("-3", -3),
        ("+7", 7),
        ("1.5", 1.5),
        ("1.", 1.0),
        (".5", 0.5),
        ("1e-3", 0.001),
        ("true", True),
        ("False", False),
        ("none", None),
        ("null", None),
        ("relu", "relu"),
        ("'10'", "10"),
        ('"true"', "true"),
        ("''", ""),
        ("inf", "inf"),
        ("1_000", "1_000"),
        ("a b", "a b"),
    ],
)
def test_kwarg_values_are_typed(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)
    spec = parse(f"py:m:f?k={text}")
    assert parse(str(spec)).kwargs == (("k", value),)
    assert type(parse(str(spec)).kwargs[0][1]) is type(value)


def test_timm_tag_and_py_target_helpers():
    assert timm_name_tag(parse("timm:resnet50.a1_in1k")) == ("resnet50", "a1_in1k")
    assert timm_name_tag(parse("timm:resnet50")) == ("resnet50", None)
    assert py_target(parse("py:nets/tiny.py:build")) == ("nets/tiny.py", "build", True)
    assert py_target(parse("py:pkg.mod:Net.create")) == ("pkg.mod", "Net.create", False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tim:resnet50", "Did you mean 'timm:resnet50'?"),
        ("torchvison:resnet18", "Did you mean 'torchvision:resnet18'?"),
        ("tv:resnet18", "Did you mean 'torchvision:resnet18'?"),
        ("foo:bar", "unknown model source 'foo:' in 'foo:bar'"),
        ("models.net:build", "write 'py:models.net:build'"),
        ("timm:", "empty model name; expected timm:NAME"),
        ("timm:resnet50.", "expected timm:NAME or timm:NAME.TAG"),
        ("timm:res-net", "expected timm:NAME or timm:NAME.TAG"),
        ("torchvision:resnet50.tv_in1k", "expected torchvision:NAME"),
        ("py:nets/tiny.py", "missing factory name"),
        ("py:pkg.mod", "missing factory name"),
        ("py:pkg.mod:", "missing factory name"),
        ("py::build", "missing module or file before ':build'"),
        ("py:pkg.mod:3d", "factory '3d' is not a Python name"),
        ("py:nets/tiny:build", "'nets/tiny' looks like a path but does not end in .py"),
        ("py:pkg-x:build", "'pkg-x' is neither a module name nor a .py file"),
        ("py:m:f?", "nothing after '?'"),
        ("py:m:f?width", "malformed keyword argument 'width'"),
        ("py:m:f?a=1&&b=2", "malformed keyword argument ''"),
        ("py:m:f?a=", "malformed keyword argument 'a='"),
        ("py:m:f?1a=2", "keyword '1a' is not a Python identifier"),
        ("py:m:f?a=1&a=2", "keyword 'a' is given twice"),
    ],
)
def test_bad_specs_are_one_line_errors(text, expected):
    with pytest.raises(RexbenchError) as info:
        parse(text)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


# --- py: factories ------------------------------------------------------------------------------


def test_py_file_factory_builds_with_kwargs(tiny: Path):
    model = rexbench.create_model("py:tiny.py:build?width=2&num_classes=10")
    assert not model.training
    assert model.conv.out_channels == 16
    assert model.fc.out_features == 10
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    # the factory takes num_classes: create_model's argument reaches it unless the spec sets one
    assert rexbench.create_model("py:tiny.py:build", num_classes=5).fc.out_features == 5
    assert (
        rexbench.create_model("py:tiny.py:build?num_classes=3", num_classes=5).fc.out_features == 3
    )
    # the factory has no num_classes parameter: it is not passed
    assert rexbench.create_model("py:tiny.py:build_fixed", num_classes=5).fc.out_features == 7
    # absolute path and a path in a sub-folder, relative to the current directory
    assert rexbench.create_model(f"py:{tiny}:build").conv.out_channels == 8
    (tiny.parent / "nets").mkdir()
    (tiny.parent / "nets" / "tiny2.py").write_text(TINY)
    assert rexbench.create_model("py:nets/tiny2.py:build?width=0.5").conv.out_channels == 4


def test_py_file_can_import_its_siblings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "sibling_blocks_x7.py").write_text("from torch import nn\nWIDTH = 5\n")
    (tmp_path / "net.py").write_text(
        "from torch import nn\nimport sibling_blocks_x7 as b\n\n"
        "def build():\n    return nn.Conv2d(3, b.WIDTH, 1)\n"
    )
    monkeypatch.delitem(sys.modules, "sibling_blocks_x7", raising=False)
    path_before = list(sys.path)
    model = rexbench.create_model(f"py:{tmp_path / 'net.py'}:build")
    assert model.out_channels == 5
    assert sys.path == path_before
    sys.modules.pop("sibling_blocks_x7", None)


def test_py_module_factory_and_its_provenance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    package = tmp_path / "extpkg_t6"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(TINY)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        spec = parse("py:extpkg_t6.nets:build?width=0.5")
        model = rexbench.create_model(spec)
        assert model.conv.out_channels == 4
        info = provenance(spec)
        digest = hashlib.sha256((package / "nets.py").read_bytes()).hexdigest()
        assert info == {
            "spec": "py:extpkg_t6.nets:build?width=0.5",
            "source": "py",
            "kwargs": {"width": 0.5},
            "module": "extpkg_t6.nets",
            "file": str((package / "nets.py").resolve()),
            "sha256": digest,
            "factory": "build",
        }
        (package / "nets.py").write_text(TINY + "\n# edited\n")
        assert source_hash(spec) != digest
        assert source_hash(spec) == hashlib.sha256((package / "nets.py").read_bytes()).hexdigest()
    finally:
        for name in [n for n in sys.modules if n.startswith("extpkg_t6")]:
            del sys.modules[name]


def test_py_file_provenance_hash_follows_the_file(tiny: Path):
    spec = parse("py:tiny.py:build?width=2")
    info = provenance(spec)
    assert info["file"] == str(tiny.resolve())
    assert info["module"] is None and info["factory"] == "build"
    assert info["kwargs"] == {"width": 2}
    assert info["sha256"] == hashlib.sha256(TINY.encode()).hexdigest() == source_hash(spec)
    # same size, same second: the new code is what runs (no stale bytecode) and the hash changes
    tiny.write_text(TINY.replace("int(8 * width)", "int(9 * width)"))
    assert rexbench.create_model(spec).conv.out_channels == 18
    assert source_hash(spec) != info["sha256"]


def test_zoo_and_library_provenance(monkeypatch: pytest.MonkeyPatch):
    zoo = provenance(parse("rexnet_100"))
    assert zoo["spec"] == "rexnet_x1.0"
    assert zoo["library"] == "rexbench" and zoo["version"] == rexbench.__version__
    assert zoo["builder"] == "rexbench.models.rexnet:rexnet"
    assert zoo["builder_kwargs"] == {"width_mult": 1.0}
    assert source_hash(parse("rexnet_100")) is None

    versions = {"timm": "1.0.31", "torchvision": "0.29.1"}
    monkeypatch.setattr(importlib.metadata, "version", lambda name: versions[name])
    assert provenance(parse("timm:resnet50.a1_in1k?drop_rate=0.1")) == {
        "spec": "timm:resnet50.a1_in1k?drop_rate=0.1",
        "source": "timm",
        "kwargs": {"drop_rate": 0.1},
        "library": "timm",
        "version": "1.0.31",
        "model": "resnet50",
        "tag": "a1_in1k",
    }
    assert provenance(parse("torchvision:resnet18"))["version"] == "0.29.1"
    assert source_hash(parse("timm:resnet50")) is None

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(
        RexbenchError, match=r"timm is not installed; install it with: pip install timm torchvision"
    ):
        provenance(parse("timm:resnet50"))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "py:tiny.py:broken",
            "py:tiny.py:broken: broken() raised ValueError: width must be positive",
        ),
        ("py:tiny.py:not_a_module", "not_a_module() returned int, not a torch.nn.Module"),
        ("py:tiny.py:the_class", "the_class() returned the class Tiny, not an instance"),
        ("py:tiny.py:NOT_CALLABLE", "NOT_CALLABLE in tiny.py is a int, not a callable"),
        ("py:tiny.py:biuld", "tiny.py has no attribute 'biuld'. Did you mean: build"),
        ("py:tiny.py:Tiny.nope", "tiny.py has no attribute 'nope'"),
        ("py:tiny.py:build?widht=2", "build() raised TypeError:"),
        ("py:nope.py:build", "py:nope.py:build: file nope.py not found (looked for "),
        ("py:no_such_module_t6.nets:build", "no module named 'no_such_module_t6'; install it"),
        ("py:bad.py:build", "running bad.py failed: SyntaxError:"),
        ("py:raises_on_import.py:build", "running raises_on_import.py failed: KeyError:"),
    ],
)
def test_py_factory_errors_are_one_line(tiny: Path, spec: str, expected: str):
    (tiny.parent / "bad.py").write_text("def build(:\n    pass\n")
    (tiny.parent / "raises_on_import.py").write_text("{}['x']\n")
    assert expected in one_line_error(spec)


def test_the_file_missing_for_provenance_too(tiny: Path):
    with pytest.raises(RexbenchError, match="file gone.py not found"):
        provenance(parse("py:gone.py:build"))


# --- optional libraries -------------------------------------------------------------------------


@pytest.mark.parametrize("library", ["timm", "torchvision"])
def test_missing_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch, library: str):
    monkeypatch.setitem(sys.modules, library, None)  # makes `import library` fail
    message = one_line_error(f"{library}:resnet18")
    first = "timm " if library == "timm" else ""
    pin = f'pip install {first}"torchvision==0.{int(torch.__version__.split(".")[1]) + 15}.*" "torch=={torch.__version__}"'
    assert message.startswith(
        f"{library} is not installed; install it with: {pin} (pins your torch"
    )


def test_broken_library_install_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n"
    )
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    message = one_line_error("torchvision:resnet18")
    assert message.startswith(
        "importing torchvision failed (RuntimeError: operator torchvision::nms does not exist)"
    )
    assert f'"torch=={torch.__version__}" (pins your torch, so pip keeps it' in message
    sys.modules.pop("torchvision", None)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ("timm:resnet18?pretrained=true", "pretrained=True"),
        ("torchvision:resnet18?weights=DEFAULT", "weights=DEFAULT"),
    ],
)
def test_downloading_weights_is_refused(spec: str, key: str):
    message = one_line_error(spec)
    assert f"{key} would download weights" in message and "--weights PATH" in message


# --- input shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("3x224x224", (3, 224, 224)),
        ("1x28x28", (1, 28, 28)),
        ("3 x 224 x 224", (3, 224, 224)),
        ("3X160X128", (3, 160, 128)),
        ("3,224,224", (3, 224, 224)),
        ("256x192", (3, 256, 192)),
        ("224", (3, 224, 224)),
    ],
)
def test_parse_input_shape(text: str, shape: tuple[int, int, int]):
    assert parse_input_shape(text) == shape
    assert parse_input_shape(format_shape(shape)) == shape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "expected CxHxW (e.g. 3x224x224)"),
        ("3x224x224x2", "expected CxHxW"),
        ("3x2.5x2", "expected CxHxW"),
        ("-3x2x2", "expected CxHxW"),
        ("axb", "expected CxHxW"),
        ("3x0x224", "sizes must be positive integers"),
    ],
)
def test_parse_input_shape_errors(text: str, expected: str):
    with pytest.raises(RexbenchError) as info:
        parse_input_shape(text)
    assert str(info.value).startswith(f"--input-shape {text!r}: ")
    assert expected in str(info.value)


def test_default_input_shapes(tiny: Path):
    assert default_input_shape(parse("rexnet_x1.0")) == (3, 224, 224)
    assert default_input_shape(parse("efficientnet_b3")) == (3, 300, 300)  # paper Table 5
    spec = parse("py:tiny.py:build")
    assert default_input_shape(spec) == (3, 32, 32)  # factory attribute, model built on demand
    assert default_input_shape(spec, rexbench.create_model(spec)) == (3, 32, 32)
    assert default_input_shape(parse("py:tiny.py:build_gray")) == (1, 28, 28)  # model attribute
    assert default_input_shape(parse("py:tiny.py:build_cfg")) == (3, 96, 96)  # timm-style cfg
    with pytest.raises(RexbenchError) as info:
        default_input_shape(parse("py:tiny.py:build_fixed"))
    assert str(info.value) == (
        "cannot tell which input shape py:tiny.py:build_fixed expects; pass --input-shape 3xHxW "
        "(e.g. --input-shape 3x224x224) or --resolution N, or give the model or its factory an "
        "attribute default_input_shape = (3, 224, 224)"
    )
    vit = torch.nn.Identity()
    vit.image_size = 160  # torchvision's VisionTransformer: its fixed input size wins
    assert default_input_shape(parse("torchvision:vit_b_16?image_size=160"), vit) == (3, 160, 160)
    with pytest.raises(RexbenchError, match=r"default_input_shape must be \(C, H, W\)"):
        default_input_shape(parse("py:tiny.py:build_bad_shape"))


def test_factory_shape_comes_from_the_spec_and_the_file_runs_once(tmp_path: Path, monkeypatch):
    """The factory's default_input_shape is read from the module that built the model: the file
    is not run again, and any model of that spec gets it (no per-model bookkeeping)."""
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "runs.log"
    (tmp_path / "counted.py").write_text(
        TINY + f"\nwith open({str(log)!r}, 'a') as fh:\n    fh.write('run\\n')\n"
    )
    spec = parse("py:counted.py:build")
    model = rexbench.create_model(spec)
    assert default_input_shape(spec, model) == (3, 32, 32)
    assert default_input_shape(spec, torch.nn.Identity()) == (3, 32, 32)
    assert log.read_text() == "run\n"


def test_resolve_input_shape(tiny: Path):
    zoo = parse("efficientnet_b3")
    assert resolve_input_shape(zoo) == (3, 300, 300)
    assert resolve_input_shape(zoo, resolution=224) == (3, 224, 224)
    assert resolve_input_shape(zoo, input_shape="3x256x192") == (3, 256, 192)
    assert resolve_input_shape(zoo, input_shape=(3, 240, 240), resolution=240) == (3, 240, 240)
    with pytest.raises(
        RexbenchError, match="--input-shape 3x256x256 and --resolution 224 disagree"
    ):
        resolve_input_shape(zoo, input_shape="256", resolution=224)
    with pytest.raises(RexbenchError, match="--resolution must be a positive integer"):
        resolve_input_shape(zoo, resolution=0)
    gray = parse("py:tiny.py:build_gray")
    assert resolve_input_shape(gray, resolution=64) == (1, 64, 64)  # keeps the model's channels
    unknown = parse("py:tiny.py:build_fixed")
    assert resolve_input_shape(unknown, resolution=64) == (3, 64, 64)
    assert resolve_input_shape(unknown, input_shape="1x8x8") == (1, 8, 8)


def test_check_options_is_the_one_input_check():
    """Options (may agree), the form alone (spec None: no size rule) and a run configuration's
    fields (exclusive: one of the two, a sequence)."""
    zoo = parse("rexnet_x1.0")
    assert check_options(zoo, "3x224x224", 224) == (3, 224, 224)
    assert check_options(None, "8", None) == (3, 8, 8)  # no size rule without a model
    with pytest.raises(RexbenchError, match="between 32"):
        check_options(zoo, "8", None)
    assert check_options(None, None, 5) is None
    assert check_options(None, [1, 28, 28], None, exclusive=True) == (1, 28, 28)
    with pytest.raises(
        RexbenchError, match="^give either a resolution or an input shape, not both$"
    ):
        check_options(None, (3, 224, 224), 224, exclusive=True)
    with pytest.raises(RexbenchError, match=r"^input_shape must be \(C, H, W\)"):
        check_options(None, "3x224x224", None, exclusive=True)  # fields are not option text


# --- real timm / torchvision (skipped when not installed) -----------------------------------------


@pytest.mark.external
def test_timm_models():
    timm = require("timm")
    model = rexbench.create_model("timm:resnet18?num_classes=10")
    assert sum(p.numel() for p in model.parameters()) == 11_689_512 - 513 * 990
    assert not model.training
    assert default_input_shape(parse("timm:resnet18"), model) == (3, 224, 224)
    spec = parse("timm:test_vit.r160_in1k")  # the tag's pretrained config sets the input size
    assert default_input_shape(spec) == (3, 160, 160)
    assert default_input_shape(parse("timm:test_resnet?in_chans=1")) == (1, 160, 160)
    assert default_input_shape(parse("timm:test_vit?img_size=96")) == (3, 96, 96)
    assert provenance(spec)["version"] == timm.__version__
    assert "Did you mean: timm:resnet50" in one_line_error("timm:resnet5o")
    assert "has no tag 'a1_in1kk'. Did you mean: timm:resnet18.a1_in1k" in one_line_error(
        "timm:resnet18.a1_in1kk"
    )
    assert rexbench.create_model("timm:resnet18.a1_in1k?num_classes=0").num_classes == 0
    assert "unexpected keyword argument 'bogus'" in one_line_error("timm:test_resnet?bogus=1")


@pytest.mark.external
def test_torchvision_models():
    torchvision = require("torchvision")
    model = rexbench.create_model("torchvision:resnet18")
    assert sum(p.numel() for p in model.parameters()) == 11_689_512  # torchvision's documented size
    small = rexbench.create_model("torchvision:mobilenet_v3_small?num_classes=10")
    assert small.classifier[-1].out_features == 10
    assert default_input_shape(parse("torchvision:resnet18"), model) == (3, 224, 224)
    assert default_input_shape(parse("torchvision:efficientnet_b3")) == (3, 300, 300)
    version = provenance(parse("torchvision:resnet18"))["version"]
    assert torchvision.__version__.startswith(version)  # "0.29.1+cpu" is the wheel's local label
    assert "Did you mean: torchvision:resnet18" in one_line_error("torchvision:resnet81")
    with pytest.raises(RexbenchError, match="cannot tell which input shape"):
        default_input_shape(parse("torchvision:lraspp_mobilenet_v3_large?num_classes=2"))


def _reference(entry):
    """The library model a built-in one reproduces: ("torchvision", name, kwargs) from its
    `reference` ("torchvision mobilenet_v2(width_mult=1.4)", "timm tf_efficientnet_lite1")."""
    import re

    match = re.fullmatch(r"(timm|torchvision) (\w+)(?:\((.*)\))?", entry.reference)
    if match is None:
        return None
    kwargs = dict(kv.split("=") for kv in match[3].split(", ")) if match[3] else {}
    return match[1], match[2], {k: float(v) for k, v in kwargs.items()}


@pytest.mark.external
@pytest.mark.parametrize("entry", [e for e in MODELS if _reference(e)], ids=lambda e: e.name)
def test_built_in_models_have_the_reference_librarys_parameters_and_keys(entry) -> None:
    """The real timm / torchvision model each built-in one reproduces: same parameter count, same
    state-dict keys and shapes (so their checkpoints load as they are)."""
    library, name, kwargs = _reference(entry)
    if library == "timm":
        theirs = require("timm").create_model(name, pretrained=False, **kwargs)
    else:
        theirs = require("torchvision").models.get_model(name, weights=None, **kwargs)
    ours = entry.build()
    assert sum(p.numel() for p in theirs.parameters()) == entry.params
    mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert mine == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
