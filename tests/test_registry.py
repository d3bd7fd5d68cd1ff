"""Names and the registry: canonical names, aliases, paper spellings, parametric widths, bad names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rexbench
from rexbench.errors import RexbenchError
from rexbench.registry import MODELS, ModelEntry, Registry

REPO = Path(__file__).resolve().parents[1]

# Every canonical name rexbench must know.
CANONICAL = [
    *(
        f"rexnet_x{w}"
        for w in ("0.9", "1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "2.0", "2.2", "3.0")
    ),
    *(f"rexnet_lite_x{m}" for m in ("1.0", "1.3", "1.5", "2.0")),
    "rexnet_plain",
    *(f"efficientnet_b{i}" for i in range(4)),
    *(f"efficientnet_lite{i}" for i in range(4)),
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v2_x1.4",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
]

ALIASES = {
    # timm's names
    "rexnet_100": "rexnet_x1.0",
    "rexnet_130": "rexnet_x1.3",
    "rexnet_150": "rexnet_x1.5",
    "rexnet_200": "rexnet_x2.0",
    "rexnet_300": "rexnet_x3.0",
    "mobilenetv2_100": "mobilenet_v2",
    "mobilenetv2_140": "mobilenet_v2_x1.4",
    "mobilenetv3_large_100": "mobilenet_v3_large",
    "mobilenetv3_small_100": "mobilenet_v3_small",
    "mobilenetv1_100": "mobilenet_v1",
    "tf_efficientnet_lite0": "efficientnet_lite0",
    "tf_efficientnet_lite1": "efficientnet_lite1",
    "tf_efficientnet_lite2": "efficientnet_lite2",
    "tf_efficientnet_lite3": "efficientnet_lite3",
    # the paper's spellings
    "ReXNet (x1.0)": "rexnet_x1.0",
    "ReXNet (×1.0)": "rexnet_x1.0",
    "ReXNet-lite (x1.3)": "rexnet_lite_x1.3",
    "ReXNet (plain)": "rexnet_plain",
    "EfficientNet-B3": "efficientnet_b3",
    "MobileNetV2 (x1.4)": "mobilenet_v2_x1.4",
    "MobileNetV3-Large": "mobilenet_v3_large",
    # parametric widths, any spelling of the number
    "rexnet_x1.75": "rexnet_x1.75",
    "rexnet_x01.50": "rexnet_x1.5",
    "rexnet_x1": "rexnet_x1.0",
    "rexnet_x4": "rexnet_x4.0",
    "rexnet_lite_x1.1": "rexnet_lite_x1.1",
}


def test_list_models_is_exactly_the_canonical_names():
    assert sorted(rexbench.list_models()) == sorted(CANONICAL)
    assert len(MODELS) == len(CANONICAL)


@pytest.mark.parametrize("name", CANONICAL)
def test_canonical_name_resolves_to_itself(name):
    assert MODELS.canonical(name) == name
    assert MODELS.get(name).name == name
    assert name in MODELS


@pytest.mark.parametrize(("alias", "canonical"), ALIASES.items())
def test_alias_resolves_to_canonical_name(alias, canonical):
    assert MODELS.canonical(alias) == canonical
    assert MODELS.canonical(alias.upper()) == canonical
    assert MODELS.canonical(alias.lower()) == canonical
    assert MODELS.canonical(f"  {alias} ") == canonical


def test_parametric_width_builds_with_that_width():
    entry = MODELS.get("rexnet_x1.75")
    assert entry.family == "ReXNet"
    assert entry.kwargs == {"width_mult": 1.75}
    assert entry.builder == "rexbench.models.rexnet:rexnet"
    lite = MODELS.get("ReXNet-lite (x1.1)")
    assert (lite.name, lite.kwargs) == ("rexnet_lite_x1.1", {"multiplier": 1.1})


def test_default_resolutions_are_those_of_the_paper_comparisons():
    expected = {f"efficientnet_b{i}": r for i, r in enumerate((224, 240, 260, 300))}
    expected |= {f"efficientnet_lite{i}": r for i, r in enumerate((224, 240, 260, 280))}
    for name in CANONICAL:
        assert MODELS.get(name).resolution == expected.get(name, 224), name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rexnet_x0", ["'rexnet_x0'", "(0, 4]", "rexnet_x0.9"]),
        ("rexnet_x-1", ["'rexnet_x-1'", "(0, 4]", "rexnet_x0.9"]),
        ("rexnet_xabc", ["'rexnet_xabc'", "not a number", "rexnet_x1.0"]),
        ("rexnet_x4.5", ["'rexnet_x4.5'", "(0, 4]", "rexnet_x3.0"]),
        ("rexnet_xnan", ["'rexnet_xnan'", "(0, 4]"]),
        ("ReXNet-lite (x9)", ["(0, 4]", "rexnet_lite_x2.0"]),
        (
            "efficientnet_b9",
            ["unknown model 'efficientnet_b9'", "efficientnet_b3", "rexbench models"],
        ),
        ("mobilenet_v4", ["unknown model", "mobilenet_v"]),
    ],
)
def test_bad_name_is_one_actionable_line(name, expected):
    with pytest.raises(RexbenchError) as info:
        MODELS.get(name)
    message = str(info.value)
    assert "\n" not in message
    for fragment in expected:
        assert fragment in message
    assert name not in MODELS


def test_unknown_name_without_close_match_still_points_to_the_list():
    with pytest.raises(RexbenchError, match=r"unknown model 'zzzz'\. Run `rexbench models`"):
        MODELS.get("zzzz")


def test_duplicate_registration_raises_and_leaves_the_registry_unchanged():
    registry = Registry()
    registry.register(ModelEntry("a_model", "Fam", "m:f", aliases=("alias_a",)))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ModelEntry("a_model", "Fam", "m:g"))
    # a clash on an alias (after spelling normalisation) is refused too, and leaves no trace
    with pytest.raises(ValueError, match="'ALIAS-A' is already registered"):
        registry.register(ModelEntry("b_model", "Fam", "m:g", aliases=("ALIAS-A",)))
    assert registry.names() == ["a_model"]
    with pytest.raises(RexbenchError):
        registry.get("b_model")
    registry.register(ModelEntry("b_model", "Fam", "m:g"))  # the refused name is still free
    assert registry.canonical("B-MODEL") == "b_model"


def test_every_alias_is_unique_across_the_zoo():
    seen: dict[str, str] = {}
    for entry in MODELS:
        for alias in entry.aliases:
            assert alias not in seen, f"{alias} for {entry.name} and {seen[alias]}"
            seen[alias] = entry.name


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_import_and_list_models_do_not_import_torch():
    result = _python(
        "import rexbench, sys; rexbench.list_models(); assert 'torch' not in sys.modules"
    )
    assert result.returncode == 0, result.stderr


def test_published_data_does_not_import_torch():
    result = _python(
        "import sys; from rexbench.paper import tables as published, claims as paper_claims; "
        "published.published('ReXNet (x2.0)'); [c.from_table() for c in paper_claims.CLAIMS]; "
        "assert 'torch' not in sys.modules"
    )
    assert result.returncode == 0, result.stderr


def test_cli_help_does_not_import_torch():
    """`rexbench --help` as users run it (python -m rexbench), with Python's import log."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rexbench", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "models" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "typer" in imported  # the log is there
    assert not {m for m in imported if m == "torch" or m.startswith("torch.")}


# ------------------------------------------------------------------ listing without building


@pytest.mark.parametrize("entry", list(MODELS), ids=lambda e: e.name)
def test_every_listed_parameter_count_is_the_built_models(entry) -> None:
    from rexbench.models.factory import exact_params

    assert entry.params is not None and entry.params == exact_params(entry)


def test_models_lists_without_importing_torch() -> None:
    import subprocess
    import sys

    code = "import sys; from rexbench.cli import run; run(['models', '--json']); print('torch' in sys.modules, file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "False", done.stderr


# -------------------------------------------------------------------------- glob patterns


def test_glob_patterns_select_built_in_models_in_registry_order() -> None:
    from rexbench.registry import expand_patterns

    assert expand_patterns(["rexnet_x1*"]) == [f"rexnet_x1.{i}" for i in range(6)]
    assert expand_patterns(["efficientnet_b?", "rexnet_x1.0"]) == [
        "efficientnet_b0",
        "efficientnet_b1",
        "efficientnet_b2",
        "efficientnet_b3",
        "rexnet_x1.0",
    ]
    assert expand_patterns(["REXNET_1[03]0"]) == ["rexnet_x1.0", "rexnet_x1.3"]  # timm's aliases
    assert expand_patterns(["timm:resnet50", "rexnet_x1.75"]) == ["timm:resnet50", "rexnet_x1.75"]
    with pytest.raises(RexbenchError, match="no built-in model matches 'rexnet_x9\\*'"):
        expand_patterns(["rexnet_x9*"])


# ------------------------------------------------------------------ widths too small to build


def test_a_width_that_builds_an_empty_layer_is_refused_with_the_smallest_that_builds() -> None:
    import warnings

    import torch

    from rexbench.registry import MIN_WIDTH

    with pytest.raises(
        RexbenchError, match=f"empty layer.*smallest width that builds is {MIN_WIDTH:g}"
    ):
        MODELS.get("rexnet_x0.0001")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no zero-element tensor, no warning
        model = MODELS.get(f"rexnet_x{MIN_WIDTH:g}").build().eval()
        with torch.inference_mode():
            assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)
    assert MODELS.get("rexnet_lite_x0.0001").name == "rexnet_lite_x0.0001"  # lite keeps 8+ channels
