"""The grammar of list options (`--config eager,ort --config max`); model specs: tests/models."""

from __future__ import annotations

from rexbench.spec import split_values


def test_split_values_flattens_repeated_and_comma_separated_values_in_order():
    assert split_values(["eager,ort", " max ", "ort"]) == ["eager", "ort", "max", "ort"]
    assert split_values(("gpu=a100, rack=1",)) == ["gpu=a100", "rack=1"]


def test_split_values_drops_blanks():
    assert split_values(None) == []
    assert split_values([]) == []
    assert split_values([" , ,", "", "a,,b,"]) == ["a", "b"]
