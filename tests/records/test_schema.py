"""Record schema: JSON round trip with raw samples, version refusal, validation messages."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from rexbench.errors import RexbenchError
from rexbench.records.schema import (
    SCHEMA_VERSION,
    ModelInfo,
    Record,
    RunInfo,
    Timing,
    dumps,
    upgrade,
)
from rexbench.spec import ModelSpec


def make_record(**overrides) -> Record:
    fields = dict(
        model=ModelInfo("rexnet_x1.0"),
        run=RunInfo({"device": "cpu", "batch_size": 1, "threads": None}, "eager", "0123456789ab"),
        env={"machine_id": "amd-epyc-2c-16e4d4e5", "cpu": {"flags": ["avx2"]}, "gpus": []},
        counts={"params": 4_796_186, "macs_conv": 400_438_000},
        timing=Timing(
            samples_ns=[44_700_123, 49_500_456, 59_700_789],
            warmup_ns=[900_000_001, 45_000_000],
            compile_s=12.345678901234,
            peak_memory_bytes=123_456_789,
            peak_memory_kind="cpu_rss_growth",
            device_start={"time": "2026-01-01T00:00:00+00:00", "loadavg": [1.5, 1.0, 0.5]},
            device_end={"time": "2026-01-01T00:01:00+00:00", "loadavg": [2.0, 1.2, 0.6]},
        ),
        summary={"median_ns": 49_500_456, "iqr_over_median": 0.30161616161616161},
        warnings=["noisy: IQR/median = 30.2% > 10%"],
    )
    fields.update(overrides)
    return Record(**fields)


def as_dict(record: Record) -> dict:
    return json.loads(record.to_json())


def test_round_trip_is_exact():
    record = make_record()
    text = record.to_json()
    back = Record.from_json(text)
    assert back == record
    assert back.timing.samples_ns == [44_700_123, 49_500_456, 59_700_789]
    assert back.summary["iqr_over_median"] == 0.30161616161616161  # not rounded
    assert back.to_json() == text
    assert back.schema_version == SCHEMA_VERSION and back.kind == "profile"
    assert back.machine_id == "amd-epyc-2c-16e4d4e5"
    assert back.key == ("rexnet_x1.0", "0123456789ab")


def test_header_first_and_sample_lists_on_one_line():
    text = make_record().to_json()
    assert list(json.loads(text))[:4] == ["schema_version", "kind", "rexbench_version", "created"]
    assert '"samples_ns": [44700123, 49500456, 59700789]' in text


def test_numpy_values_become_plain_json_and_nan_becomes_null():
    timing = Timing(samples_ns=list(np.array([3, 1, 2], dtype=np.int64)), warmup_ns=[])
    record = make_record(timing=timing, summary={"median_ns": np.float64(2.0), "cv": float("nan")})
    back = Record.from_json(record.to_json())
    assert back.timing.samples_ns == [3, 1, 2]
    assert all(type(v) is int for v in back.timing.samples_ns)
    assert back.summary == {"median_ns": 2.0, "cv": None}


def test_counts_only_record_without_timing():
    record = make_record(timing=None, summary={})
    assert Record.from_json(record.to_json()) == record


def test_model_info_from_spec_and_run_info_from_config():
    spec = ModelSpec("timm", "resnet50.a1_in1k", (("drop_rate", 0.1),))
    info = ModelInfo.from_spec(spec, {"library": "timm", "library_version": "1.0.9"})
    assert info == ModelInfo(
        "timm:resnet50.a1_in1k?drop_rate=0.1",
        "timm",
        {"drop_rate": 0.1},
        {"library": "timm", "library_version": "1.0.9"},
    )
    config = SimpleNamespace(
        to_dict=lambda: {"device": "cpu", "compile": True}, label="compile", config_id="abc"
    )
    assert RunInfo.from_config(config) == RunInfo(
        {"device": "cpu", "compile": True}, "compile", "abc"
    )


def test_newer_schema_refused_with_upgrade_advice():
    data = as_dict(make_record())
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(RexbenchError) as err:
        Record.from_json(json.dumps(data), source="results/m/x.json")
    assert str(err.value) == (
        f"results/m/x.json was written by a newer rexbench (schema {SCHEMA_VERSION + 1}; "
        f"this one reads {SCHEMA_VERSION}): upgrade rexbench (pip install -U rexbench)"
    )


def test_missing_schema_version_refused():
    data = as_dict(make_record())
    del data["schema_version"]
    with pytest.raises(RexbenchError, match=r"^x.json has no schema_version: .* re-run"):
        Record.from_dict(data, source="x.json")


@pytest.mark.parametrize("bad", ["1", 0, -3, True, 1.0])
def test_invalid_schema_version_refused(bad):
    data = as_dict(make_record())
    data["schema_version"] = bad
    with pytest.raises(RexbenchError, match="invalid schema_version"):
        Record.from_dict(data, source="x.json")


def test_older_schema_refused_or_migrated():
    with pytest.raises(RexbenchError) as err:
        upgrade({"schema_version": 1}, "old.json", reads=2, migrations={})
    assert str(err.value) == (
        "old.json was written by an older rexbench (schema 1; this one reads 2) and cannot be "
        "converted: re-run the measurement to regenerate it"
    )
    migrated = upgrade(
        {"schema_version": 1, "a": 1}, "old.json", reads=2, migrations={1: lambda d: {**d, "b": 2}}
    )
    assert migrated == {"schema_version": 2, "a": 1, "b": 2}


@pytest.mark.parametrize(
    "path, message",
    [
        (("timing", "samples_ns"), "missing field 'timing.samples_ns'"),
        (("run", "config_id"), "missing field 'run.config_id'"),
        (("env", "machine_id"), "missing field 'env.machine_id'"),
        (("counts",), "missing field 'counts'"),
        (("model",), "missing field 'model'"),
    ],
)
def test_missing_field_named(path, message):
    data = as_dict(make_record())
    section = data
    for key in path[:-1]:
        section = section[key]
    del section[path[-1]]
    with pytest.raises(RexbenchError) as err:
        Record.from_dict(data, source="r.json")
    assert str(err.value) == f"r.json: {message}; re-run the measurement to regenerate it"


def test_wrong_types_named():
    data = as_dict(make_record())
    data["timing"]["samples_ns"] = [1.5, 2.5]
    with pytest.raises(RexbenchError, match="'timing.samples_ns' must be a list of integer"):
        Record.from_dict(data)
    data = as_dict(make_record())
    data["run"]["label"] = 3
    with pytest.raises(RexbenchError, match="field 'run.label' must be str, got int"):
        Record.from_dict(data)
    data = as_dict(make_record())
    data["timing"]["compile_s"] = "fast"
    with pytest.raises(RexbenchError, match="'timing.compile_s' must be int/float, got str"):
        Record.from_dict(data)


def test_unknown_kind_refused():
    data = as_dict(make_record())
    data["kind"] = "counts"
    with pytest.raises(RexbenchError, match="kind 'counts' is not a record this rexbench reads"):
        Record.from_dict(data, source="baselines/counts.json")


@pytest.mark.parametrize("text", ['{"schema_version": 1, ', "", "not json at all"])
def test_corrupt_json_is_one_clear_error(text):
    with pytest.raises(RexbenchError) as err:
        Record.from_json(text, source="broken.json")
    message = str(err.value)
    assert message.startswith("broken.json: not valid JSON (") and "\n" not in message
    assert message.endswith("delete it and re-run the measurement")


def test_json_that_is_not_an_object():
    with pytest.raises(
        RexbenchError, match=r"^a.json: not a rexbench file \(expected a JSON object\)$"
    ):
        Record.from_json("[1, 2]", source="a.json")


def test_unserialisable_value_fails_before_output():
    with pytest.raises(TypeError, match="cannot store object in a record"):
        make_record(counts={"params": object()}).to_json()


def test_dumps_inlines_only_number_lists():
    text = dumps({"a": [1, 2.5], "b": ["x", "y"], "c": [], "d": {"e": [3]}})
    assert '"a": [1, 2.5]' in text and '"d": {\n    "e": [3]\n  }' in text
    assert json.loads(text) == {"a": [1, 2.5], "b": ["x", "y"], "c": [], "d": {"e": [3]}}


def test_parity_and_run_id_round_trip_and_decide_validity():
    parity = {
        "valid": False,
        "rel_l2": 0.21,
        "max_abs_diff": 0.05,
        "top1_agreement": 0.0,
        "tolerance": {"rel_l2": 1e-3, "dtype": "fp32", "source": "..."},
        "reason": "relative L2 error 0.21 > 0.001 (fp32 tolerance)",
    }
    record = make_record(parity=parity)
    record.timing.run_id = "00ff00ff00ff00ff"
    back = Record.from_json(record.to_json())
    assert back == record and back.parity == parity and back.run_id == "00ff00ff00ff00ff"
    assert not back.valid and back.parity_text == "INVALID (rel L2 0.21 > 0.001)"
    ok = make_record(parity={**parity, "valid": True, "rel_l2": 3.1e-07})
    assert ok.valid and ok.parity_text == "ok (rel L2 3.1e-07)"
    assert (back.parity_cell, ok.parity_cell) == ("INVALID 0.2", "ok 3e-07")  # profile's table
    nan = make_record(parity={"valid": False, "reason": "the output has NaN"})
    assert (nan.parity_text, nan.parity_cell) == ("INVALID (the output has NaN)", "INVALID")
    other = make_record()
    other.timing.run_id = "00ff00ff00ff00ff"
    assert back.measured_with(other) and not make_record().measured_with(make_record())


def test_records_written_before_the_parity_check_still_load_as_not_checked():
    """The committed results/ were written before `parity` and `timing.run_id` existed."""
    from pathlib import Path

    from rexbench.records.store import load_records

    data = as_dict(make_record())
    del data["parity"], data["timing"]["run_id"]
    old = Record.from_dict(data)
    assert old.parity == {} and old.valid and old.run_id is None
    assert old.parity_text == "not checked" and old.parity_cell == "-"
    committed = load_records(
        Path(__file__).parents[2] / "results" / "example" / "amd-epyc-2c-16e4d4e5"
    )
    assert committed and all(r.valid and r.parity == {} for r in committed)
