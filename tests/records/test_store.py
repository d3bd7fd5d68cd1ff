"""Store: file naming, atomic writes under failure and Ctrl-C, finding and loading, counts baseline."""

from __future__ import annotations

import json
import os
import re

import pytest

from rexbench.errors import RexbenchError
from rexbench.records import store
from rexbench.records.schema import ModelInfo, Record, RunInfo, Timing
from rexbench.spec import ModelSpec

MACHINE = "amd-epyc-2c-16e4d4e5"


def make_record(spec: str = "rexnet_x1.0", label: str = "eager", config_id: str = "0123456789ab"):
    return Record(
        model=ModelInfo(spec),
        run=RunInfo({"device": "cpu", "batch_size": 1}, label, config_id),
        env={"machine_id": MACHINE},
        counts={"params": 4_796_186},
        timing=Timing(samples_ns=[3, 1, 2]),
    )


def listing(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "spec",
    [
        "py:path/to/file.py:factory?width=1.5&num_classes=10",
        "timm:resnet50.a1_in1k",
        "py:C:\\nets\\my.py:make",
        "torchvision:../../etc/passwd",
    ],
)
def test_filename_is_safe_readable_and_distinct(spec):
    name = store.record_filename(spec, "cl+compile:max-autotune", "0123456789ab")
    assert re.fullmatch(r"[a-z0-9._-]+\.json", name)
    assert not name.startswith(".")
    stem = re.sub(r"[^a-z0-9]", "", spec.split(":")[1].lower())[:6]
    assert stem in name.replace("_", "").replace(".", "")  # still readable
    assert name.endswith("__0123456789ab.json")


def test_filename_rules():
    assert store.record_filename("rexnet_x1.0", "eager", "abc") == "rexnet_x1.0__eager__abc.json"
    # sanitising never merges two specs into one file
    assert store.slug("timm:a_b") != store.slug("timm_a_b") != store.slug("timm:a/b")
    assert store.slug("ReXNet") != store.slug("rexnet")
    long = store.slug("py:" + "x" * 300)
    assert len(long) == 80 + 9
    assert store.record_filename("a", "eager", "1") == store.record_filename("a", "eager", "1")
    assert store.machine_dir("results", "../evil") == store.machine_dir("results", "../evil")
    assert ".." not in store.machine_dir("results", "../evil").parts


def test_write_and_load_back(tmp_path):
    record = make_record("timm:resnet50")
    path = store.write_record(record, tmp_path)
    assert path.parent == tmp_path / MACHINE
    assert path.name.startswith("timm_resnet50-") and path.name.endswith(
        "__eager__0123456789ab.json"
    )
    assert store.load_record(path) == record
    assert listing(tmp_path) == [f"{MACHINE}/{path.name}"]  # no temporary file left
    # the same model and config replaces the file
    again = make_record("timm:resnet50")
    again.timing.samples_ns = [9, 9, 9]
    assert store.write_record(again, tmp_path) == path
    assert store.load_record(path).timing.samples_ns == [9, 9, 9]
    assert len(listing(tmp_path)) == 1


def test_failed_serialisation_keeps_previous_file(tmp_path):
    path = store.write_record(make_record(), tmp_path)
    before = path.read_text()
    broken = make_record()
    broken.counts = {"params": 1, "odd": object()}
    with pytest.raises(TypeError):
        store.write_record(broken, tmp_path)
    assert path.read_text() == before
    assert listing(tmp_path) == [f"{MACHINE}/{path.name}"]


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_ctrl_c_during_write_leaves_no_partial_file(tmp_path, monkeypatch, where):
    path = store.write_record(make_record(), tmp_path)
    before = path.read_text()
    second = make_record("rexnet_x2.0")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store.os, where, interrupt)
    update = make_record()
    update.timing.samples_ns = [7, 7, 7]
    with pytest.raises(KeyboardInterrupt):
        store.write_record(update, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        store.write_record(second, tmp_path)
    monkeypatch.undo()
    assert path.read_text() == before  # the old record is intact
    assert listing(tmp_path) == [f"{MACHINE}/{path.name}"]  # no new, partial or temp file


def test_unwritable_out_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(
        RexbenchError, match=r"^cannot write to .*file/amd-epyc.*choose a writable folder$"
    ):
        store.write_record(make_record(), blocker)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_out_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(RexbenchError, match="cannot write to"):
        store.write_record(make_record(), ro)


def test_find_record(tmp_path):
    assert store.find_record(tmp_path, "rexnet_x1.0", "0123456789ab", MACHINE) is None
    record = make_record()
    store.write_record(record, tmp_path)
    store.write_record(make_record(config_id="ffffffffffff"), tmp_path)
    store.write_record(make_record("rexnet_x1.0_extra"), tmp_path)
    assert store.find_record(tmp_path, "rexnet_x1.0", "0123456789ab", MACHINE) == record
    assert store.find_record(tmp_path, ModelSpec("zoo", "rexnet_x1.0"), "0123456789ab", MACHINE)
    assert store.find_record(tmp_path, "rexnet_x1.0", "000000000000", MACHINE) is None
    assert store.find_record(tmp_path, "rexnet_x2.0", "0123456789ab", MACHINE) is None
    assert store.find_record(tmp_path, "rexnet_x1.0", "0123456789ab", "other-machine") is None


def test_a_record_written_beside_a_kept_one_gets_the_next_name_and_is_found_as_newest(tmp_path):
    first = make_record()
    first.created = "2026-01-01T00:00:00+00:00"
    path = store.write_record(first, tmp_path)
    before = path.read_bytes()
    names = []
    for day, samples in (("02", [5, 5, 5]), ("03", [6, 6, 6])):
        newer = make_record()
        newer.created, newer.timing.samples_ns = f"2026-01-{day}T00:00:00+00:00", samples
        names.append(store.write_record(newer, tmp_path, replace=False).name)
    stem = "rexnet_x1.0__eager__0123456789ab"
    assert names == [f"{stem}__2.json", f"{stem}__3.json"]
    assert path.read_bytes() == before
    found = store.find_record(tmp_path, "rexnet_x1.0", "0123456789ab", MACHINE)
    assert found.timing.samples_ns == [6, 6, 6]
    assert len(store.load_records(tmp_path)) == 3
    # a record of another model whose name starts alike is not taken for one of these
    other = make_record("rexnet_x1.0__eager")
    other.created = "2027-01-01T00:00:00+00:00"
    store.write_record(other, tmp_path)
    assert store.find_record(tmp_path, "rexnet_x1.0", "0123456789ab", MACHINE) == found


def test_find_record_finds_any_label_and_refuses_damage(tmp_path):
    path = store.write_record(make_record(label="compile_cl"), tmp_path)
    assert (
        store.find_record(tmp_path, "rexnet_x1.0", "0123456789ab", MACHINE).run.label
        == "compile_cl"
    )
    path.write_text("{")
    with pytest.raises(RexbenchError, match="not valid JSON"):
        store.find_record(tmp_path, "rexnet_x1.0", "0123456789ab", MACHINE)


def test_load_records_from_dirs(tmp_path):
    a = store.write_record(make_record("rexnet_x1.0"), tmp_path / "results")
    b = store.write_record(make_record("rexnet_x2.0"), tmp_path / "results")
    other = make_record("mobilenet_v2")
    other.env["machine_id"] = "other-machine"
    c = store.write_record(other, tmp_path / "results")
    (a.parent / ".rexnet_x1.0.json.tmp.json").write_text("{")  # a stray temporary file
    store.write_counts(tmp_path / "results", {"rexnet_x1.0": {"params": 1}})  # not a record
    records = store.load_records([tmp_path / "results", a])  # a listed twice: loaded once
    assert [r.model.spec for r in records] == ["rexnet_x1.0", "rexnet_x2.0", "mobilenet_v2"]
    assert sorted([a.name, b.name, c.name]) == sorted(
        store.record_filename(r.model.spec, "eager", "0123456789ab") for r in records
    )
    assert [r.model.spec for r in store.load_records(str(b))] == ["rexnet_x2.0"]
    (tmp_path / "empty").mkdir()
    assert store.load_records(tmp_path / "empty") == []


def test_load_records_bad_file(tmp_path):
    good = store.write_record(make_record(), tmp_path)
    bad = good.parent / "bad.json"
    bad.write_text(json.dumps({"schema_version": 99, "kind": "profile"}))
    with pytest.raises(RexbenchError) as err:
        store.load_records([tmp_path])
    assert str(err.value) == (
        f"{bad} was written by a newer rexbench (schema 99; this one reads 1): "
        "upgrade rexbench (pip install -U rexbench)"
    )
    skipped: list[str] = []
    records = store.load_records([tmp_path], skip_bad=True, on_skip=skipped.append)
    assert [r.model.spec for r in records] == ["rexnet_x1.0"]
    assert skipped == [f"skipped {err.value}"]
    with pytest.warns(UserWarning, match="skipped .*bad.json"):
        store.load_records([tmp_path], skip_bad=True)
    with pytest.raises(RexbenchError, match="^no such file or folder: .*nowhere$"):
        store.load_records([tmp_path / "nowhere"])


def test_counts_baseline_round_trip(tmp_path):
    counts = {
        "rexnet_x1.0": {"params": 4_796_186, "macs_conv": 400_438_000, "unsupported": {}},
        "efficientnet_b0": {"params": 5_288_548, "macs_conv": 385_000_000},
    }
    path = store.write_counts(tmp_path / "baselines", counts)
    assert path == tmp_path / "baselines" / "counts.json"
    assert store.read_counts(tmp_path / "baselines") == counts
    data = json.loads(path.read_text())
    assert data["kind"] == "counts" and data["schema_version"] == 1
    assert list(data["models"]) == ["efficientnet_b0", "rexnet_x1.0"]  # sorted, stable diffs
    # merge keeps other models; replace=False drops them
    store.write_counts(path, {"rexnet_x1.0": {"params": 1}})
    assert store.read_counts(path) == {**counts, "rexnet_x1.0": {"params": 1}}
    store.write_counts(path, {"mobilenet_v2": {"params": 2}}, merge=False)
    assert store.read_counts(path) == {"mobilenet_v2": {"params": 2}}


def test_counts_baseline_errors(tmp_path):
    assert store.read_counts(tmp_path, missing_ok=True) == {}
    with pytest.raises(RexbenchError, match="^no counts baseline at .*counts.json: create it with"):
        store.read_counts(tmp_path)
    path = tmp_path / "counts.json"
    path.write_text(json.dumps({"schema_version": 2, "kind": "counts", "models": {}}))
    with pytest.raises(RexbenchError, match=r"newer rexbench \(schema 2; this one reads 1\)"):
        store.read_counts(path)
    path.write_text(json.dumps({"schema_version": 1, "kind": "profile"}))
    with pytest.raises(RexbenchError, match="not a rexbench counts baseline"):
        store.read_counts(path)
    path.write_text(json.dumps({"schema_version": 1, "kind": "counts", "models": {"a": 3}}))
    with pytest.raises(RexbenchError, match="counts of 'a' are not an object"):
        store.read_counts(path)
    path.write_text('{"schema_version": 1, "kind": "counts", "models": {"a": ')
    with pytest.raises(RexbenchError) as damaged:
        store.read_counts(path)
    advice = str(damaged.value)
    assert "not valid JSON" in advice and "git checkout -- " in advice and "delete" not in advice


def test_non_record_json_in_a_folder_is_passed_over_and_a_claimed_one_warned(tmp_path):
    store.write_record(make_record(), tmp_path)
    (tmp_path / "analysis.json").write_text(json.dumps({"baseline": 1, "kinds": []}))
    (tmp_path / "load.json").write_text("[1, 2, 3]")
    (tmp_path / "future.json").write_text(json.dumps({"schema_version": 9, "kind": "profile"}))
    skipped: list[str] = []
    records = store.load_records(tmp_path, skip_bad=True, on_skip=skipped.append)
    assert len(records) == 1
    assert len(skipped) == 1 and "future.json" in skipped[0] and "newer rexbench" in skipped[0]
    with pytest.raises(RexbenchError, match="analysis.json"):  # named on its own: must be a record
        store.load_records(tmp_path / "analysis.json")


def test_atomic_write_gives_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = store.atomic_write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
