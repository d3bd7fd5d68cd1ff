"""`rexbench tune` end to end through `rexbench.cli.run` on a tiny `py:` model (in this process,
with a no-op drift anchor and no worker processes): records, the deploy snippet run in a fresh
process, the figure, a candidate that cannot be prepared, Ctrl-C, and bad input as one line with
exit 2."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import pytest
from _profile_fakes import fake_parts
from _tune_nets import WIDE, write_wide

from rexbench.cli import run as run_cli
from rexbench.measure.backends.base import Backend, PreparedModel
from rexbench.measure.backends.inputs import make_input
from rexbench.measure.backends.registry import BACKENDS
from rexbench.records.store import load_records

pytestmark = pytest.mark.usefixtures("one_thread")
ONE = ["--dtype", "fp32", "--threads", "1", "--budget", "5m", "--out", "res"]


def run(argv: list[str]) -> int:
    return run_cli(["tune", *argv], parts=fake_parts())


class Unexportable(Backend):
    """A runtime that cannot take this model: its preparation fails."""

    name = "toyfail"
    title = "Toy runtime"
    dtypes = ("fp32",)

    def prepare(self, model, config, device, **kwargs):
        raise RuntimeError("no kernel for aten::mean.dim")


class Interrupted(Backend):
    """The model as it is, its timed call free (so it is the fastest); Ctrl-C when prepared for a
    run of more than 20 calls (the final rung)."""

    name = "toyint"
    title = "Toy interrupted"
    dtypes = ("fp32",)

    def prepare(
        self, model, config, device, *, default_resolution, input_shape=None, in_place=False
    ):
        if config.runs > 20:
            raise KeyboardInterrupt
        module = model if in_place else copy.deepcopy(model)
        x = make_input(config, default_resolution, input_shape=input_shape)
        output = module(x).detach()
        return Cached(module, x, config, device, int(x.shape[-2]), cached=output)


class Cached(PreparedModel):
    def __init__(self, *args, cached, **kwargs):
        super().__init__(*args, **kwargs)
        self.cached = cached

    def run(self):
        return self.cached


@pytest.fixture
def wide(tmp_path, monkeypatch):
    """cwd = tmp_path with nets.py; the toy runtimes registered (and removed afterwards)."""
    write_wide(tmp_path)
    monkeypatch.chdir(tmp_path)
    for backend in (Unexportable(), Interrupted()):
        BACKENDS.register(backend)
    yield tmp_path
    BACKENDS.unregister("toyfail")
    BACKENDS.unregister("toyint")


def test_a_search_keeps_records_writes_the_snippet_and_the_figure_and_runs_the_snippet(
    wide, capsys
):
    code = run([WIDE, "--config", "eager,channels_last", *ONE, "--runs", "30", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    rows = data["candidates"]
    assert [r["candidate"] for r in rows] == ["eager t1 steady", "channels_last t1 steady"]
    # two candidates: no screen, both are finalists measured in full
    assert data["rungs"] == [{"index": 0, "size": 2, "runs": 30, "warmup": 7, "final": True}]
    assert sorted(r["status"] for r in rows) == ["finalist", "winner"]
    winner = next(r for r in rows if r["status"] == "winner")
    assert winner["median_ms"] == min(r["median_ms"] for r in rows)
    assert data["recommendation"] == winner
    assert data["front"] == [
        {"candidate": winner["candidate"], "ms": winner["median_ms"], "top1_agreement": 1.0}
    ]
    records = load_records(wide / "res")
    written = sorted(str(p.relative_to(wide)) for p in (wide / "res").rglob("*.json"))
    assert written == sorted(r["record"] for r in rows)
    for record in records:
        assert len(record.samples) == 30 and record.valid
        assert record.parity["fidelity"]["top1_agreement"] == 1.0  # eager fp32 against itself
        assert record.parity["fidelity"]["inputs"] == 216
    assert data["trained_weights"] is False and "random weights" in data["notes"][0]
    # the snippet was run in a fresh process: its median against tune's
    snippet = data["snippet"]
    assert (
        snippet["error"] is None
        and snippet["path"] == "res/tune/py_nets.py_wide-" + snippet["path"][-11:]
    )
    assert snippet["tune_ms"] == winner["median_ms"] and snippet["median_ms"] > 0
    assert snippet["ratio"] == pytest.approx(snippet["median_ms"] / winner["median_ms"])
    # in this process (test doubles) there is no worker to time the winner again around it
    assert snippet["side_by_side"] is None and snippet["rexbench_ms"] is None
    assert snippet["within"] == (abs(snippet["ratio"] - 1) <= 0.05)
    text = Path(snippet["path"]).read_text()
    ast.parse(text)
    assert "'OMP_NUM_THREADS': '1'" in text and "MALLOC_MMAP_MAX_" in text  # the steady allocator
    assert f"rexbench.create_model({WIDE!r})" in text and "torch.compile" not in text
    assert ("memory_format=torch.channels_last" in text) == (winner["config"] == "channels_last")
    assert Path(data["figure"]).read_bytes()[:4] == b"\x89PNG"
    assert data["figure"] == snippet["path"][:-3] + ".png"


def test_a_candidate_that_cannot_be_prepared_is_one_row_with_its_reason(wide, capsys):
    code = run([WIDE, "--config", "eager,toyfail", "--layout", "nchw", *ONE, "--runs", "20"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = " ".join(captured.out.split())
    assert "rexbench tune py:nets.py:Wide" in out
    assert (
        "status: failed: py:nets.py:Wide could not be prepared as toyfail (Toy runtime unknown): "
        "RuntimeError: no kernel for aten::mean.dim" in out
    )
    assert "Pareto front, latency against top-1 agreement: eager t1 steady (" in out
    assert (
        "recommended (a valid output, the fastest latency of the last rung): eager t1 steady" in out
    )
    assert "py:nets.py:Wide has random weights" in out and "deploy snippet res/tune/" in out
    assert len(load_records(wide / "res")) == 1


def test_ctrl_c_shows_the_front_of_what_finished_and_exits_130(wide, capsys):
    # three candidates: a screen of 20 runs, then the final rung, where toyint's preparation is cut
    argv = ["--config", "eager,channels_last,toyint", *ONE, "--runs", "30", "--json"]
    code = run([WIDE, *argv])
    captured = capsys.readouterr()
    assert code == 130, captured.err
    data = json.loads(captured.out)
    assert data["interrupted"] is True and data["snippet"] is None and data["figure"] is None
    screened = [r for r in data["candidates"] if r["rung"] == 0]
    assert len(screened) == 3 and all(r["runs"] == 20 for r in screened)
    assert data["front"][0]["candidate"] == "toyint t1 steady"  # the fastest of what finished
    assert "interrupted: 0 finished record(s) kept" in captured.err
    assert not list((wide / "res").rglob("*.json"))  # no record, and no partial one


def test_with_trained_weights_agreement_decides(wide, capsys):
    import torch

    from rexbench.measure.checks.parity import seeded_model

    torch.save(seeded_model(WIDE).state_dict(), wide / "wide.pth")
    argv = ["--config", "eager", "--layout", "nchw", *ONE, "--runs", "20", "--json"]
    code = run([WIDE, *argv, "--weights", "wide.pth", "--min-agreement", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["trained_weights"] is True
    assert data["notes"][0].startswith(
        "recommended (top-1 agreement >= 1, the fastest latency of the last rung): eager t1 steady"
    )
    assert data["recommendation"]["fidelity"]["top1_agreement"] == 1.0
    (record,) = load_records(wide / "res")
    assert record.model.provenance["weights"].endswith("wide.pth")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--config", "nope"], "unknown configuration 'nope'"),
        (["--threads", "99"], "--threads 99: this machine has"),
        (["--threads", "two"], "--threads 'two': give whole numbers"),
        (["--dtype", "int4"], "--dtype 'int4': choose from fp32, fp16, bf16"),
        (["--layout", "nhcw"], "--layout 'nhcw': choose from nhwc, nchw"),
        (["--allocator", "mimalloc"], "--allocator 'mimalloc': choose from steady"),
        (["--batch-size", "0"], "--batch-size 0: give a batch size of 1 or more"),
        (["--budget", "ten"], "--budget 'ten': give a duration such as 10m"),
        (["--min-agreement", "1.5"], "--min-agreement 1.5: give a fraction from 0 to 1"),
        (["--runs", "0"], "--runs 0: give a number of timed calls of 1 or more"),
        (["--objective", "speed"], "Invalid value for '--objective'"),
        (["--figure", "fig.txt"], "--figure fig.txt: use a file name ending in .png, .svg, .pdf"),
        (["--snippet", "deploy.txt"], "--snippet deploy.txt: give a file name ending in .py"),
        (["--config", "ort", "--dtype", "bf16"], "the search space is empty (nothing matched)"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_writes_nothing(wide, capsys, argv, needle):
    code = run([WIDE, "--out", "res", *argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("rexbench: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0], lines[0]
    assert not (wide / "res").exists()


def test_an_unknown_model_is_one_line(wide, capsys):
    assert run(["nosuchnet", "--out", "res"]) == 2
    assert "rexbench: error: unknown model 'nosuchnet'" in capsys.readouterr().err
    assert not (wide / "res").exists()
