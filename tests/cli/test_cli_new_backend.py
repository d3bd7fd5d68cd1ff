"""A backend added in one place: a toy backend defined here (the model traced by torch.jit.trace,
with one option of its own) is registered, and every command that takes or reads a configuration -
profile, sweep, baseline save, gate, report, plot - accepts `--config traced` (and the option,
`--config traced:freeze=true`) through the real command line, with nothing else changed.

A backend registered at run time, as here, exists in this process only: sweep and baseline save get
`--in-process`. One added to the list in rexbench/measure/backends/registry.py is registered in every
worker process too (a worker imports the registry as the parent does)."""

from __future__ import annotations

import copy
import json
import time
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from _profile_fakes import fake_parts, write_tiny

from rexbench.cli import run as run_cli
from rexbench.errors import RexbenchError
from rexbench.measure.backends.base import Backend, Option, PreparedModel
from rexbench.measure.backends.inputs import make_input, torch_dtype
from rexbench.measure.backends.prepare import prepare
from rexbench.measure.backends.registry import BACKENDS
from rexbench.measure.config import RunConfig
from rexbench.records.store import load_records

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = "py:nets.py:Tiny"
FAST = ["--runs", "3", "--warmup", "1", "--threads", "1"]


def run(argv: list[str]) -> int:
    """The command line, with a no-op drift anchor where the command measures (fast)."""
    return run_cli(argv, parts=fake_parts())


class Traced(Backend):
    """The model traced by torch.jit.trace (and frozen by torch.jit.freeze with freeze=true)."""

    name = "traced"
    title = "TorchScript trace"
    module = "torch"
    options = {"freeze": Option(False, "torch.jit.freeze the traced module")}

    def prepare(
        self, model, config, device, *, default_resolution, input_shape=None, in_place=False
    ):
        start = time.perf_counter()
        module = (model if in_place else copy.deepcopy(model)).eval()
        module = module.to(device=device, dtype=torch_dtype(config.dtype))
        x = make_input(replace(config, device=device), default_resolution, input_shape=input_shape)
        freeze = self.option_values(config)["freeze"]
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.compile
            traced = torch.jit.trace(module, x)
            traced = torch.jit.freeze(traced) if freeze else traced
        prepared = PreparedModel(traced, x, config, device, int(x.shape[-2]))
        prepared.runtime = self.record(config, time.perf_counter() - start, graph=str(type(traced)))
        return prepared


@pytest.fixture
def traced(tmp_path, monkeypatch):
    """The toy backend registered (and removed afterwards); cwd = tmp_path with nets.py."""
    BACKENDS.register(Traced())
    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    BACKENDS.unregister("traced")


def test_the_backend_prepares_and_reads_its_output_through_the_protocol(traced):
    from rexbench.models.factory import create_model
    from rexbench.spec import parse

    model = create_model(parse(TINY))
    for text, frozen in (("traced", False), ("traced:freeze=true", True)):
        config = RunConfig.preset(text)
        prepared = prepare(model, config, input_shape=(3, 16, 16))
        out = prepared.output()
        assert out.dtype == np.float32 and out.shape == (1, 2)
        expected = model.eval()(prepared.input).detach().numpy()
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
        assert prepared.runtime["options"] == {"freeze": frozen}


def test_profile_measures_it_beside_pytorch_and_records_what_it_did(traced, capsys):
    args = ["profile", TINY, "--config", "eager,traced,traced:freeze=true", *FAST]
    code = run([*args, "--out", "res", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)["rows"]
    assert [r["config"] for r in rows] == ["eager", "traced", "traced:freeze=true"]
    assert all(r["valid"] for r in rows)
    records = {r.run.label: r for r in load_records(traced / "res")}
    assert set(records) == {"eager", "traced", "traced:freeze=true"}
    plain, frozen = records["traced"], records["traced:freeze=true"]
    assert plain.run.config["runtime"] == "traced" and plain.run.config["options"] == {}
    assert frozen.run.config["options"] == {"freeze": True}
    assert len({r.run.config_id for r in records.values()}) == 3
    info = frozen.timing.preparation["runtime"]
    assert info["name"] == "TorchScript trace" and info["graph"].endswith("RecursiveScriptModule'>")
    assert info["version"] == BACKENDS.get("torch").version()
    assert info["options"] == {"freeze": True} and info["setup_s"] > 0
    assert frozen.parity["valid"] and frozen.parity["rel_l2"] < 1e-5  # checked like any other
    assert records["eager"].timing.preparation["runtime"]["name"] == "PyTorch"


def test_sweep_measures_it_and_skips_it_when_done(traced, capsys):
    args = ["sweep", TINY, "--config", "traced", *FAST, "--out", "res", "--in-process"]
    assert run(args) == 0, capsys.readouterr().err
    assert [r.run.label for r in load_records(traced / "res")] == ["traced"]
    capsys.readouterr()
    assert run([*args, "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skip"] == [TINY]


def test_baseline_save_then_gate_remeasures_it(traced, capsys):
    save = ["baseline", "save", TINY, "--config", "traced:freeze=true", *FAST, "--in-process"]
    save += ["--dir", "base"]
    assert run([*save, "--json"]) == 0, capsys.readouterr().err
    saved = json.loads(capsys.readouterr().out)
    (path,) = saved["records"]
    (record,) = load_records(path)
    assert record.run.label == "traced:freeze=true" and record.valid
    gate = ["gate", TINY, "--baseline", "base", "--runs", "3", "--warmup", "1", "--in-process"]
    code = run([*gate, "--check", "latency.median:+1000%", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == data["exit_code"] == 0
    latency = [v for v in data["verdicts"] if v["check"] == "latency.median:+1000%"]
    assert [v["config"] for v in latency] == ["traced:freeze=true"]


def test_report_and_plot_read_its_records(traced, capsys):
    assert run(["profile", TINY, "--config", "eager,traced", *FAST, "--out", "res"]) == 0
    capsys.readouterr()
    assert run(["report", "res", "--json"]) == 0
    sections = {s["id"]: s for s in json.loads(capsys.readouterr().out)["sections"]}
    (row,) = sections["runtimes"]["rows"]  # the fastest runtime per model, against eager
    assert sorted(c["config"] for c in row["configs"]) == ["eager", "traced"]
    plot = ["plot", "res", "--config", "eager,traced", "--all-families", "--top1", f"{TINY}=50"]
    assert run([*plot, "--out", "f.png", "--json"]) == 0
    latency = json.loads(capsys.readouterr().out)["panels"][1]["lines"]  # top-1 vs CPU latency
    assert sorted(line.split(" - ")[1] for line in latency) == ["eager", "traced"]
    assert (traced / "f.png").stat().st_size > 0


def test_an_unknown_option_or_name_is_one_line_with_the_closest(traced, capsys):
    code = run(["profile", TINY, "--config", "traced:frieze=true", *FAST])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == (
        "rexbench: error: traced has no option 'frieze' (did you mean freeze?); its options: freeze"
    )
    assert run(["profile", TINY, "--config", "tracd", *FAST]) == 2
    assert "unknown configuration 'tracd' (did you mean traced?)" in capsys.readouterr().err
    with pytest.raises(RexbenchError, match=r"traced option freeze='yes': expected bool"):
        RunConfig.preset("traced:freeze=yes")
