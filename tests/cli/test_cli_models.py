"""`rexbench models`: real CLI runs, exact params against the reference counts, family filter, errors."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

import rexbench
import rexbench.cli.models as models_cli
from rexbench.cli import run
from rexbench.registry import ModelEntry, Registry

COUNTS = json.loads((Path(__file__).parents[1] / "data" / "reference_counts.json").read_text())[
    "models"
]


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run(list(argv))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def listing() -> dict[str, dict]:
    code, out = _run("models", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == rexbench.list_models()
    return {r["name"]: r for r in rows}


def test_json_params_equal_the_reference_counts(listing):
    assert set(COUNTS) <= set(listing)
    for name, exact in COUNTS.items():
        assert listing[name]["params"] == exact["params"], name
        assert listing[name]["resolution"] == exact["resolution"], name


def test_json_has_every_field_for_every_model(listing):
    fields = {
        "name",
        "family",
        "resolution",
        "params",
        "paper_flops",
        "paper_params",
        "paper_top1",
        "paper_table",
        "aliases",
        "reference",
    }
    for row in listing.values():
        assert set(row) == fields
        assert isinstance(row["params"], int) and row["params"] > 0
    # ReXNet (plain) has no reference code: within 3% of the paper's 3.4M
    assert abs(listing["rexnet_plain"]["params"] - 3.4e6) / 3.4e6 < 0.03


def test_json_carries_the_published_numbers_and_their_table(listing):
    x10 = listing["rexnet_x1.0"]
    assert (x10["paper_top1"], x10["paper_table"], x10["paper_flops"]) == (77.9, "Table 5", "0.40B")
    assert x10["aliases"] == ["rexnet_100"]
    b3 = listing["efficientnet_b3"]
    assert (b3["resolution"], b3["paper_flops"], b3["paper_params"]) == (300, "1.8B", "12M")
    assert listing["rexnet_x2.2"]["paper_table"] == "Table A1"
    assert listing["efficientnet_lite1"]["paper_top1"] == 76.7
    assert listing["mobilenet_v2_x1.4"]["paper_table"] == "Table 4"
    small = listing["mobilenet_v3_small"]
    assert small["paper_top1"] is small["paper_table"] is small["paper_flops"] is None


def test_table_lists_every_model(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out = _run("models")
    assert code == 0
    for name in rexbench.list_models():
        assert f" {name} " in out
    assert "34,708,792" in out and "Table A2" in out and "tf_efficientnet_lite3" in out


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("ReXNet-lite", [f"rexnet_lite_x{m}" for m in ("1.0", "1.3", "1.5", "2.0")]),
        ("rexnet (plain)", ["rexnet_plain"]),
        ("EFFICIENTNET", [f"efficientnet_b{i}" for i in range(4)]),
        ("mobilenet", [f"mobilenet_{v}" for v in ("v1", "v2", "v2_x1.4", "v3_large", "v3_small")]),
    ],
)
def test_family_filter(family, expected):
    code, out = _run("models", "--family", family, "--json")
    assert code == 0
    assert [r["name"] for r in json.loads(out)] == expected


def test_unknown_family_is_exit_2_with_one_line(capsys):
    code, out = _run("models", "--family", "resnet")
    assert code == 2 and out == ""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("rexbench: error: unknown model family 'resnet'; known: ReXNet,")


def test_missing_builder_shows_a_dash(monkeypatch, capsys):
    """A model module or builder that does not exist yet gives params '-' instead of a crash."""
    registry = Registry()
    registry.register(ModelEntry("rexnet_x1.0", "ReXNet", "rexbench.models.not_written_yet:f"))
    registry.register(ModelEntry("rexnet_x1.3", "ReXNet", "rexbench.models.rexnet:not_there"))
    monkeypatch.setattr(models_cli, "MODELS", registry)
    monkeypatch.setenv("COLUMNS", "200")
    code, out = _run("models", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["name"], r["params"], r["paper_table"]) for r in rows] == [
        ("rexnet_x1.0", None, "Table 5"),
        ("rexnet_x1.3", None, "Table 5"),
    ]
    code, out = _run("models")
    assert code == 0
    assert re.search(r" rexnet_x1\.0 +224 +- +0\.40B +4\.8M +77\.9% +Table 5 ", out), out
    assert re.search(r" rexnet_x1\.3 +224 +- +0\.66B ", out), out
