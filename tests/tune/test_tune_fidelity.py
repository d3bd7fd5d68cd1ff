"""Fidelity of tune's candidates, measured on the prepared model in its own worker process (or in
this one) against this process's eager fp32 model, and put into each record's output check."""

from __future__ import annotations

from pathlib import Path

import pytest
from _profile_fakes import fake_parts
from _tune_nets import GREY, WIDE, write_wide

from rexbench.measure.checks.fidelity import Fidelity
from rexbench.measure.config import RunConfig
from rexbench.measure.run.profile import profile_models
from rexbench.tune.fidelity import SET, FidelityProbe

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def nets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_wide(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "io").mkdir()
    return tmp_path / "io"


def configs(*names: str, batch: int = 1) -> list[RunConfig]:
    return [RunConfig.preset(n, threads=1, batch_size=batch, runs=3, warmup=1) for n in names]


def test_each_worker_measures_its_configuration_on_the_photographs(nets: Path) -> None:
    probe = FidelityProbe(None, nets)
    records = profile_models([WIDE], configs("eager", "ort"), measure=probe.measure)
    assert len({r.env["worker"]["pid"] for r in records}) == 2  # each in a worker of its own
    for record in records:
        fid = record.parity["fidelity"]
        # the worker's copy is the network this process built: same seeded weights
        assert fid["top1_agreement"] == 1.0 and fid["top5_overlap"] == 1.0
        assert fid["rel_l2"] < 1e-5 and fid["inputs"] == 216 and fid["set"] == SET
        assert record.valid and len(record.samples) == 3
    assert [probe.of(c) for c in configs("eager", "ort")] == [
        Fidelity(**{k: v for k, v in r.parity["fidelity"].items() if k != "set"}) for r in records
    ]
    assert sorted(p.name for p in nets.iterdir()) == sorted(
        ["inputs-16.npy", *(f"logits-{key}.npy" for key in probe.results)]
    )


def test_in_one_process_and_at_any_batch_the_numbers_are_shared_by_threads_and_batch(nets) -> None:
    probe = FidelityProbe(None, nets)
    records = profile_models(
        [WIDE], configs("eager", batch=5), parts=fake_parts(), measure=probe.measure
    )
    assert records[0].parity["fidelity"]["top1_agreement"] == 1.0  # 216 rows in chunks of 5
    assert probe.of(RunConfig.preset("eager", threads=2)) == probe.of(configs("eager")[0])


def test_a_model_the_photographs_do_not_fit_has_its_reason(nets: Path) -> None:
    probe = FidelityProbe(None, nets)
    (record,) = profile_models([GREY], configs("eager"), parts=fake_parts(), measure=probe.measure)
    assert record.parity["fidelity"] == {
        "reason": "fidelity not measured: ValueError: the photographs are 3 x R x R inputs, "
        "the model takes (1, 16, 16)"
    }
    assert record.valid  # the output check still judges it
