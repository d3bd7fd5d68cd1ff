"""Sweeps: named sets, resumption (skip / --force), interruption and failures, with a fake profile
and one real tiny measurement through the CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from _synthetic import make

from rexbench.errors import RexbenchError
from rexbench.measure.config import RunConfig
from rexbench.measure.machine import env as envmod
from rexbench.measure.run import sweep as sw
from rexbench.measure.run.profile import ProfileEvent
from rexbench.records.store import write_record

MACHINE = "test-machine-00000001"
EAGER = RunConfig.preset("eager", runs=2, warmup=1)


class FakeProfile:
    """Stands in for profile.profile_models: one synthetic record per config, written like it
    (none when out_dir is None). Call n gives medians of 5 n ms, created on day n of 2026."""

    def __init__(
        self, machine: str = MACHINE, interrupt_at: str | None = None, fail_at: str | None = None
    ) -> None:
        self.machine, self.interrupt_at, self.fail_at = machine, interrupt_at, fail_at
        self.calls: list[tuple[str, list[str]]] = []
        self.together: list[bool] = []

    def __call__(self, specs, configs, *, out_dir, on_record=None, progress=None, **kw):
        self.calls.append((", ".join(specs), [c.label for c in configs]))
        self.together.append(kw.get("together", False))
        records = []
        for spec in specs:
            records += self._one(spec, configs, out_dir, on_record, progress)
        return records

    def _one(self, spec, configs, out_dir, on_record, progress):
        if spec == self.interrupt_at:
            raise KeyboardInterrupt
        if spec == self.fail_at:
            raise RexbenchError(f"{spec} could not be prepared as eager")
        records = []
        for config in configs:
            if progress is not None:
                progress(ProfileEvent("timing", spec, config.label, 1, 2))
            n = len(self.calls)
            day = f"2026-01-{n:02d}T00:00:00+00:00"
            record = make(
                spec, 5.0 * n, machine=self.machine, preset=config.preset_name, created=day
            )
            record.run.config, record.run.config_id = config.to_dict(), config.config_id
            path = write_record(record, out_dir) if out_dir is not None else None
            if on_record is not None:
                on_record(record, path)
            records.append(record)
        return records


def test_named_sets() -> None:
    named = sw.sets()
    assert named["table5"] == (
        "rexnet_x0.9",
        "efficientnet_b0",
        "rexnet_x1.0",
        "efficientnet_b1",
        "rexnet_x1.3",
        "efficientnet_b2",
        "rexnet_x1.5",
        "efficientnet_b3",
        "rexnet_x2.0",
    )
    assert named["tableA1"][0] == "rexnet_plain" and len(named["tableA1"]) == 11
    assert sorted(named["tableA2"]) == sorted(
        [f"rexnet_lite_x{w}" for w in ("1.0", "1.3", "1.5", "2.0")]
        + [f"efficientnet_lite{i}" for i in range(4)]
    )
    assert named["mobile"] == (
        "mobilenet_v1",
        "mobilenet_v2",
        "mobilenet_v2_x1.4",
        "mobilenet_v3_large",
        "mobilenet_v3_small",
    )
    assert len(named["all"]) == 28 == len(set(named["all"]))


def test_expand_sets_models_and_errors() -> None:
    assert sw.expand(["Table_5"]) == list(sw.sets()["table5"])
    assert sw.expand(["rexnet_100", "TableA1"])[:2] == ["rexnet_x1.0", "rexnet_plain"]
    assert len(sw.expand(["tablea1", "rexnet_x1.0"])) == 11  # each model once
    with pytest.raises(RexbenchError, match="'tabel5' is neither a set .*table5.* nor a model"):
        sw.expand(["tabel5"])


def test_resume_skips_and_force_remeasures(tmp_path) -> None:
    fake = FakeProfile()
    specs = ["mobilenet_v3_small", "rexnet_x0.9"]
    first = sw.run(sw.plan(specs, [EAGER], tmp_path, machine_id=MACHINE), tmp_path, profile_fn=fake)
    assert [r.model.spec for r in first.records] == specs and not first.skipped
    assert all(p.exists() for p in first.paths) and len(first.paths) == 2
    again = sw.plan(specs, [EAGER], tmp_path, machine_id=MACHINE)
    assert [(i.todo, len(i.done)) for i in again] == [([], 1), ([], 1)]
    second = sw.run(again, tmp_path, profile_fn=fake)
    assert second.records == [] and len(fake.calls) == 2 and len(second.skipped) == 2
    # runs/warmup do not change the configuration; another preset does
    more_runs = replace(EAGER, runs=50)
    assert all(not i.todo for i in sw.plan(specs, [more_runs], tmp_path, machine_id=MACHINE))
    cl = RunConfig.preset("channels_last", runs=2, warmup=1)
    mixed = sw.plan(specs, [EAGER, cl], tmp_path, machine_id=MACHINE)
    assert [[c.label for c in i.todo] for i in mixed] == [["channels_last"], ["channels_last"]]
    forced = sw.plan(specs, [EAGER], tmp_path, force=True, machine_id=MACHINE)
    sw.run(forced, tmp_path, profile_fn=fake)
    assert len(fake.calls) == 4
    # another machine's records do not count as measured here
    assert all(i.todo for i in sw.plan(specs, [EAGER], tmp_path, machine_id="other-00000002"))


def test_interrupt_keeps_finished_and_resumes(tmp_path) -> None:
    specs = ["mobilenet_v3_small", "rexnet_x0.9", "rexnet_x1.0"]
    fake = FakeProfile(interrupt_at="rexnet_x0.9")
    result = sw.run(
        sw.plan(specs, [EAGER], tmp_path, machine_id=MACHINE), tmp_path, profile_fn=fake
    )
    assert result.interrupted and [r.model.spec for r in result.records] == ["mobilenet_v3_small"]
    files = sorted(p.name for p in (tmp_path / MACHINE).iterdir())
    assert files == ["mobilenet_v3_small__eager__" + EAGER.config_id + ".json"]
    resumed = FakeProfile()
    sw.run(sw.plan(specs, [EAGER], tmp_path, machine_id=MACHINE), tmp_path, profile_fn=resumed)
    assert [c[0] for c in resumed.calls] == ["rexnet_x0.9", "rexnet_x1.0"]


def test_failure_stops_or_keeps_going(tmp_path) -> None:
    specs = ["mobilenet_v3_small", "rexnet_x0.9", "rexnet_x1.0"]
    items = sw.plan(specs, [EAGER], tmp_path, machine_id=MACHINE)
    with pytest.raises(RexbenchError, match="rexnet_x0.9 could not be prepared"):
        sw.run(items, tmp_path, profile_fn=FakeProfile(fail_at="rexnet_x0.9"))
    items = sw.plan(specs, [EAGER], tmp_path, machine_id=MACHINE)
    assert [i.spec for i in items if i.todo] == ["rexnet_x0.9", "rexnet_x1.0"]  # first one kept
    result = sw.run(items, tmp_path, keep_going=True, profile_fn=FakeProfile(fail_at="rexnet_x0.9"))
    assert result.failed == [("rexnet_x0.9", "rexnet_x0.9 could not be prepared as eager")]
    assert [r.model.spec for r in result.records] == ["rexnet_x1.0"]
    assert result.to_dict()["failed"][0]["model"] == "rexnet_x0.9"


def test_groups_join_the_models_of_each_claim() -> None:
    items = [sw.PlanItem(spec, [EAGER]) for spec in sw.sets()["table5"]]
    grouped = [[i.spec for i in g] for g in sw.groups(items)]
    # x2.0 vs B3 and vs B1, x1.3 vs B1 (Figure 3 caption), x1.0 vs B0, x1.5 vs B2; x0.9 alone
    assert sorted(map(sorted, grouped)) == sorted(
        map(
            sorted,
            [
                ["rexnet_x0.9"],
                ["efficientnet_b0", "rexnet_x1.0"],
                ["efficientnet_b1", "rexnet_x1.3", "efficientnet_b3", "rexnet_x2.0"],
                ["efficientnet_b2", "rexnet_x1.5"],
            ],
        )
    )
    assert [len(g) for g in sw.groups(items, "all")] == [9]
    assert [len(g) for g in sw.groups(items, "none")] == [1] * 9
    with pytest.raises(RexbenchError, match="--interleave 'pairs': choose one of claims, all"):
        sw.groups(items, "pairs")


def test_a_claims_pair_is_measured_together_even_when_one_model_was_done(tmp_path) -> None:
    fake = FakeProfile()
    specs = ["rexnet_x1.0", "efficientnet_b0", "mobilenet_v3_small"]
    sw.run(
        sw.plan(["rexnet_x1.0"], [EAGER], tmp_path, machine_id=MACHINE), tmp_path, profile_fn=fake
    )
    stored = tmp_path / MACHINE / f"rexnet_x1.0__eager__{EAGER.config_id}.json"
    before = stored.read_bytes()
    items = sw.plan(specs, [EAGER], tmp_path, machine_id=MACHINE)
    assert [bool(i.todo) for i in items] == [False, True, True]
    batches = sw.batches(items)
    assert [(b.specs, [r.model.spec for r in b.again]) for b in batches] == [
        (["rexnet_x1.0", "efficientnet_b0"], ["rexnet_x1.0"]),
        (["mobilenet_v3_small"], []),
    ]
    seen = []
    result = sw.run(
        items, tmp_path, profile_fn=fake, on_model=lambda i, b: seen.append((i, b.specs))
    )
    assert fake.calls[1:] == [
        ("rexnet_x1.0, efficientnet_b0", ["eager"]),
        ("mobilenet_v3_small", ["eager"]),
    ]
    assert fake.together == [False, True, False]
    assert seen == [(0, ["rexnet_x1.0", "efficientnet_b0"]), (2, ["mobilenet_v3_small"])]
    assert [r.model.spec for r in result.records] == specs
    # the stored record is kept byte for byte; the one measured beside B0 has a file of its own
    assert stored.read_bytes() == before
    assert result.paths[0] == stored.with_name(f"rexnet_x1.0__eager__{EAGER.config_id}__2.json")
    data = result.to_dict()
    assert [(r["model"], r["median_ms"]) for r in data["kept"]] == [("rexnet_x1.0", 5.0)]
    assert [(r["model"], r["median_ms"]) for r in data["measured"]] == [
        ("rexnet_x1.0", 10.0),
        ("efficientnet_b0", 10.0),
        ("mobilenet_v3_small", 15.0),
    ]
    assert data["skipped"] == [] and data["measured"][0]["valid"] is True
    # the next sweep finds the newest record of rexnet_x1.0 and measures nothing
    again = sw.plan(specs, [EAGER], tmp_path, machine_id=MACHINE)
    assert [(i.todo, [r.latency.median_ms for r in i.done]) for i in again] == [
        ([], [10.0]),
        ([], [10.0]),
        ([], [15.0]),
    ]
    assert sw.batches(again) == []


def test_a_kept_record_is_kept_again_and_a_new_configuration_is_measured_beside_it(tmp_path):
    """x1.0 has eager and channels_last stored, B0 only eager: the pair is timed with
    channels_last, x1.0's stored channels_last is kept (a second file); its eager is skipped."""
    fake = FakeProfile()
    cl = RunConfig.preset("channels_last", runs=2, warmup=1)
    sw.run(
        sw.plan(["rexnet_x1.0"], [EAGER, cl], tmp_path, machine_id=MACHINE),
        tmp_path,
        profile_fn=fake,
    )
    sw.run(
        sw.plan(["efficientnet_b0"], [EAGER], tmp_path, machine_id=MACHINE),
        tmp_path,
        profile_fn=fake,
    )
    folder = tmp_path / MACHINE
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    items = sw.plan(["rexnet_x1.0", "efficientnet_b0"], [EAGER, cl], tmp_path, machine_id=MACHINE)
    result = sw.run(items, tmp_path, profile_fn=fake)
    assert fake.calls[-1] == ("rexnet_x1.0, efficientnet_b0", ["channels_last"])
    assert all((folder / name).read_bytes() == data for name, data in before.items())
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            *before,
            f"rexnet_x1.0__channels_last__{cl.config_id}__2.json",
            f"efficientnet_b0__channels_last__{cl.config_id}.json",
        ]
    )
    data = result.to_dict()
    assert [(r["model"], r["config"]) for r in data["kept"]] == [("rexnet_x1.0", "channels_last")]
    assert [(r["model"], r["config"]) for r in data["skipped"]] == [
        ("rexnet_x1.0", "eager"),
        ("efficientnet_b0", "eager"),
    ]


# ------------------------------------------------------------------------------------------ CLI

TINY = ["sweep", "mobilenet_v3_small", "--runs", "2", "--warmup", "1", "--config", "eager"]


def test_cli_real_measurement_then_skip(tmp_path, capsys) -> None:
    from rexbench.cli import run

    out = tmp_path / "results"
    assert run([*TINY, "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (row,) = data["measured"]
    assert row["model"] == "mobilenet_v3_small" and row["config"] == "eager"
    assert row["median_ms"] > 0 and (tmp_path / row["record"]).exists()
    assert run([*TINY, "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["measured"] == [] and [r["model"] for r in data["skipped"]] == [
        "mobilenet_v3_small"
    ]
    assert "skipping 1 already measured" in captured.err and "--force" in captured.err


@pytest.mark.slow
def test_cli_a_claim_partner_measured_beside_a_profiled_model_keeps_its_record(tmp_path, capsys):
    """`profile rexnet_x1.0`, then a sweep with its claim partner B0 and fewer runs: x1.0 is timed
    again beside B0 and said so before; its profiled record stays byte for byte, the new one gets
    a file of its own; the table lists each model once, with the figure of the record on disk."""
    from rexbench.cli import run
    from rexbench.records.schema import Record
    from rexbench.records.store import load_record, load_records

    out = tmp_path / "runs"
    fast = ["--config", "eager", "--warmup", "1", "--out", str(out)]
    assert run(["profile", "rexnet_x1.0", "--runs", "3", *fast]) == 0
    (kept,) = (out / envmod.machine_id()).iterdir()
    before = kept.read_bytes()
    capsys.readouterr()
    sweep = ["sweep", "rexnet_x1.0", "efficientnet_b0", "--runs", "2", *fast]
    assert run([*sweep, "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["measure"] == ["rexnet_x1.0", "efficientnet_b0"] and plan["skip"] == []
    assert plan["again"] == ["rexnet_x1.0 (eager)"]
    assert run(sweep) == 0
    table, err = capsys.readouterr()
    assert kept.read_bytes() == before
    assert "skipping" not in err and "measuring again 1 already measured" in err
    assert "rexnet_x1.0 (eager) with efficientnet_b0; the records in" in err
    by_name = {p.name: load_record(p) for p in kept.parent.iterdir()}
    tail = kept.name.removeprefix("rexnet_x1.0")  # __eager__<config id>.json
    again, b0 = kept.name.replace(".json", "__2.json"), f"efficientnet_b0{tail}"
    assert sorted(by_name) == sorted([kept.name, again, b0])
    old, new = by_name[kept.name], by_name[again]
    assert (old.run.config["runs"], new.run.config["runs"]) == (3, 2)
    rows = [line for line in table.splitlines() if "rexnet_x1.0" in line or "efficientnet" in line]
    assert len(rows) == 2 and "rexnet_x1.0" in rows[0] and "efficientnet_b0" in rows[1]
    assert f"{new.latency.median_ms:.3f}" in rows[0] and "measured again" in rows[0]
    assert f"kept: the stored record of rexnet_x1.0 (eager, {old.latency.median_ms:.3f} ms)" in err
    latest, dropped = Record.latest(load_records(out))  # what report and plot take
    assert dropped == 1 and new in latest and old not in latest
    # the next sweep skips both models and changes no file
    files = {p: p.read_bytes() for p in kept.parent.iterdir()}
    assert run([*sweep, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["measured"] == [] and data["kept"] == []
    assert [(r["model"], r["median_ms"]) for r in data["skipped"]] == [
        ("rexnet_x1.0", new.latency.median_ms),
        ("efficientnet_b0", by_name[b0].latency.median_ms),
    ]
    assert {p: p.read_bytes() for p in kept.parent.iterdir()} == files


def test_cli_force_interrupt_and_dry_run(tmp_path, capsys, monkeypatch) -> None:
    import rexbench.measure.run.profile
    from rexbench.cli import run

    out = tmp_path / "results"
    fake = FakeProfile(machine=envmod.machine_id())
    monkeypatch.setattr(rexbench.measure.run.profile, "profile_models", fake)
    argv = ["sweep", "mobilenet_v3_small", "rexnet_x0.9", "--runs", "2", "--config", "eager"]
    assert run([*argv, "--out", str(out)]) == 0
    assert "next: rexbench report" in capsys.readouterr().err
    assert run([*argv, "--out", str(out), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["measure"] == [] and plan["skip"] == ["mobilenet_v3_small", "rexnet_x0.9"]
    assert plan["again"] == []
    assert run([*argv, "--out", str(out), "--force"]) == 0
    assert [c[0] for c in fake.calls] == ["mobilenet_v3_small", "rexnet_x0.9"] * 2
    capsys.readouterr()
    fake.interrupt_at = "rexnet_x1.0"
    argv = ["sweep", "mobilenet_v3_large", "rexnet_x1.0", "--config", "eager", "--out", str(out)]
    assert run(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted: 1 finished record(s) kept" in err and "again to resume" in err
    assert any(p.name.startswith("mobilenet_v3_large__eager") for p in out.rglob("*.json"))
    assert not any(p.name.startswith("rexnet_x1.0") for p in out.rglob("*.json"))


def test_cli_errors(tmp_path, capsys) -> None:
    from rexbench.cli import run

    assert run(["sweep", "tabel5", "--out", str(tmp_path)]) == 2
    assert "is neither a set" in capsys.readouterr().err
    assert run(["sweep", "table5", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert run(["sweep", "table5", "--interleave", "pairs", "--out", str(tmp_path)]) == 2
    assert "--interleave 'pairs': choose one of claims, all, none" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
