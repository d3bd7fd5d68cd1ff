"""The gate on a contended machine: real gate decisions on synthetic contended records, the
re-measuring loop, the wait for a quiet second, and `baseline save` refusing a contended baseline."""

from __future__ import annotations

import pytest
from _gate_data import env, record

import rexbench.gate.run as gate_run
from rexbench.errors import RexbenchError
from rexbench.gate import checks as gate
from rexbench.gate import contended as guard
from rexbench.gate.config import GateConfig
from rexbench.gate.evaluate import GateOptions, latency_verdicts
from rexbench.gate.run import GateRequest, run_gate
from rexbench.gate.save import SaveRequest, save_baselines
from rexbench.measure.machine import contention
from rexbench.records.store import load_record, write_counts, write_record

OPTIONS = GateOptions(tuple(gate.merge_checks(gate.DEFAULT_CHECKS)))
COUNTS = {
    "resolution": 224,
    "params_total": 4_796_873,
    "params_trainable": 4_796_873,
    "macs_conv": 398_370_392,
}


def with_contention(rec, contended_chunks: int, chunks: int = 30, neighbour: bool | None = None):
    """Give `rec` contention data: `chunks` model chunks (runner 0) and as many anchor chunks,
    the first `contended_chunks` model chunks with our threads waiting half of the time.
    neighbour None: a version-1 record (no CPU times); else a 2-CPU machine never idle, where our
    threads ran the whole chunk on both CPUs (False: they waited for each other) or on one (True:
    another process had the other)."""
    wall = 300_000_000
    waits = [wall // 2 if i < contended_chunks else 0 for i in range(chunks)]
    n = 2 * chunks
    times = {}
    if neighbour is not None:
        ours = [wall if neighbour and w else 2 * wall for w in waits]
        times = {"run_ns": [r for r in ours for _ in (0, 1)], "idle_ns": [0] * n, "cpus": [2] * n}
    rec.timing.contention = {
        "version": 1 if neighbour is None else 2,
        "runners": ["eager", "anchor:conv4"],
        "model_runners": [0],
        "sources": {"psi": True, "steal": True, "wait": True},
        "chunks": {
            "runner": [0, 1] * chunks,
            "phase": ["timing"] * n,
            "calls": [10] * n,
            "wall_ns": [wall] * n,
            "psi_some_us": [0] * n,
            "psi_full_us": [0] * n,
            "steal_ticks": [0] * n,
            "total_ticks": [60] * n,
            "wait_ns": [w for w in waits for _ in (0, 1)],
            "faults": [0] * n,
            **times,
        },
    }
    return rec


def p10_verdict(base, cur):
    verdicts, _ = latency_verdicts(OPTIONS.latency_checks, base, cur, OPTIONS)
    (v,) = verdicts
    return v


def test_a_contended_run_is_never_judged_a_regression_or_a_pass():
    base = with_contention(record(40.0, seed=1), 0)
    slow = record(76.0, seed=2)  # +90%, as two busy loops made an unchanged model look
    assert p10_verdict(base, with_contention(slow, 0)).outcome == gate.REGRESSION  # clean: judged
    v = p10_verdict(base, with_contention(record(76.0, seed=2), 20))
    assert v.outcome == gate.INCONCLUSIVE and v.reason.startswith("machine contended (67% of")
    same = with_contention(record(40.0, seed=3), 20)
    assert p10_verdict(base, same).outcome == gate.INCONCLUSIVE  # a pass is not trusted either
    # 3 of 30 chunks (10%) is not more than RUN_CONTENDED: the run counts as clean
    assert p10_verdict(base, with_contention(record(40.0, seed=3), 3)).outcome == gate.PASS


def test_a_contended_baseline_makes_the_verdict_inconclusive():
    base = with_contention(record(40.0, seed=1), 30)
    v = p10_verdict(base, with_contention(record(40.0, seed=2), 0))
    assert v.outcome == gate.INCONCLUSIVE and "baseline measured under contention" in v.reason


def readings(one_ms: float, many_ms: float) -> dict:
    """Placement probe readings (rexbench.measure.machine.placement) of a 2-thread run."""
    return {
        "version": 1,
        "threads": 2,
        "stream_mb": 16,
        "one_thread_ns": [int(one_ms * 1e6)] * 5,
        "threads_ns": [int(many_ms * 1e6)] * 5,
    }


def test_runs_on_differently_placed_cpus_are_not_judged():
    base = with_contention(record(40.0, seed=1), 0)
    base.timing.contention["placement"] = readings(1.5, 1.15)  # one core complex: fast model
    slow = with_contention(record(48.0, seed=2), 0)  # +20%, as the other placement looked
    slow.timing.contention["placement"] = readings(1.5, 0.67)
    v = p10_verdict(base, slow)
    assert v.outcome == gate.INCONCLUSIVE and "placed differently" in v.reason
    assert v.details["placement"] == pytest.approx([1.15 / 1.5, 0.67 / 1.5])
    slow.timing.contention["placement"] = readings(1.5, 1.12)  # same placement: judged
    assert p10_verdict(base, slow).outcome == gate.REGRESSION


def test_measured_counters_replace_the_lagging_load_guard():
    # the loops ended seconds ago: the 1-min load is still high, the counters say the run was clean
    base = with_contention(record(40.0, seed=1), 0)
    v = p10_verdict(base, with_contention(record(52.0, seed=2, load=9.0), 0))
    assert v.outcome == gate.REGRESSION


def test_records_without_contention_data_keep_the_load_guard():
    base, cur = record(40.0, seed=1), record(76.0, seed=2, load=9.0)  # old records: no counters
    assert guard.contended(cur) is None
    v = p10_verdict(base, cur)
    assert v.outcome == gate.INCONCLUSIVE and "busy" in v.reason


def test_measure_until_clean_retries_then_judges_the_clean_run():
    script = [with_contention(record(40.0), 30), with_contention(record(41.0), 0)]
    settles = []
    records, tries = guard.measure_until_clean(
        lambda: [script.pop(0)], attempts=3, settle=lambda: settles.append(1) or 5.0
    )
    assert [r.timing.samples_ns[0] for r in records] == [record(41.0).timing.samples_ns[0]]
    assert [e["contended"] for e in tries.entries] == [True, False] and tries.gave_up is None
    assert settles == [1] and tries.entries[1]["waited_s"] == 5.0
    (note,) = tries.notes("m")
    assert "attempt 1: contended (100% of the model's chunks" in note and "attempt 2 after" in note


def test_measure_until_clean_gives_up_after_the_attempts():
    def stopped():
        raise contention.ContendedRun(
            {"measured": True, "contended": True, "contended_fraction": 1.0}
        )

    records, tries = guard.measure_until_clean(stopped, attempts=2, settle=lambda: 0.0)
    assert records == [] and len(tries.entries) == 2
    assert tries.gave_up == "machine contended in all 2 attempts"


def test_wait_for_quiet_stops_at_the_first_quiet_window():
    psi = iter([0, 900_000, 1_800_000, 1_800_000 + 5_000])  # busy, busy, then a quiet second
    reader = lambda: {"psi_some_us": next(psi), "steal_ticks": 0, "total_ticks": 100}  # noqa: E731
    slept = []
    assert guard.wait_for_quiet(10, reader, slept.append) == 3.0 and len(slept) == 3
    always = lambda: {"psi_some_us": None, "steal_ticks": None}  # noqa: E731
    assert guard.wait_for_quiet(10, always, slept.append) == 0.0  # nothing to watch: no wait


@pytest.fixture
def gate_dir(tmp_path, monkeypatch):
    root = tmp_path / "baselines"
    write_record(with_contention(record(40.0, seed=1), 0), root)
    write_counts(root, {"rexnet_x1.0": COUNTS})
    monkeypatch.setattr("rexbench.measure.machine.env.fingerprint", lambda *a: env())
    monkeypatch.setattr(guard, "wait_for_quiet", lambda: 0.0)
    return root


def test_gate_reports_inconclusive_machine_contended_when_no_attempt_is_clean(
    gate_dir, monkeypatch
):
    calls = []

    def contended_measure(spec, mine, **kw):
        calls.append(kw["abort"])
        raise contention.ContendedRun(
            {"measured": True, "contended": True, "contended_fraction": 0.9}
        )

    monkeypatch.setattr(gate_run, "measure_like", contended_measure)
    report = run_gate(GateRequest(models=("rexnet_x1.0",), baseline=gate_dir), config=GateConfig())
    assert calls == [True, True, True]  # three attempts, each stopped early
    latency = [v for v in report.verdicts if v.config != "counts"]
    assert [v.outcome for v in latency] == [gate.INCONCLUSIVE]
    assert latency[0].reason.startswith("inconclusive: machine contended (90% of the model's")
    assert len(latency[0].details["attempts"]) == 3
    assert all(v.outcome == gate.PASS for v in report.verdicts if v.config == "counts")
    assert report.exit_code == 0 and "gave up" in report.notes[-1]


def test_gate_judges_the_clean_attempt(gate_dir, monkeypatch):
    script = [with_contention(record(40.0, seed=5), 30), with_contention(record(52.0, seed=6), 0)]
    monkeypatch.setattr(gate_run, "measure_like", lambda spec, mine, **kw: [script.pop(0)])
    report = run_gate(
        GateRequest(models=("rexnet_x1.0",), baseline=gate_dir, attempts=2), config=GateConfig()
    )
    (latency,) = [v for v in report.verdicts if v.config != "counts"]
    assert latency.outcome == gate.REGRESSION and report.exit_code == 1  # +30% on a clean run
    assert [e["contended"] for e in latency.details["attempts"]] == [True, False]


def test_baseline_save_refuses_a_contended_measurement_unless_forced(tmp_path):
    given = tmp_path / "given"
    write_record(with_contention(record(40.0, seed=1), 25), given)
    request = SaveRequest(from_records=(given,), directory=tmp_path / "b")
    with pytest.raises(RexbenchError, match="not saved: measured on a contended machine"):
        save_baselines(request)
    assert not (tmp_path / "b").exists()
    saved = save_baselines(SaveRequest(from_records=(given,), directory=tmp_path / "b", force=True))
    assert len(saved.records) == 1


def test_our_own_threads_waiting_for_each_other_do_not_block_a_baseline(tmp_path):
    """A runtime's pool and PyTorch's waiting for each other on a machine nobody else used: saved;
    the same waits beside another process: refused."""
    own, given = tmp_path / "own", tmp_path / "given"
    write_record(with_contention(record(40.0, seed=1), 25, neighbour=False), own)
    saved = save_baselines(SaveRequest(from_records=(own,), directory=tmp_path / "b"))
    (path,) = saved.records
    assert guard.contended(load_record(path)) is None
    write_record(with_contention(record(40.0, seed=1), 25, neighbour=True), given)
    with pytest.raises(RexbenchError, match="not saved: measured on a contended machine") as info:
        save_baselines(SaveRequest(from_records=(given,), directory=tmp_path / "c"))
    assert "other processes ran" in str(info.value)
    assert not (tmp_path / "c").exists()
