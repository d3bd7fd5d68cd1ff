"""External models through every command: a `py:` factory in a temporary file counted,
profiled, saved as a baseline and gated with the real CLI (`rexbench.cli.run`) and its exit codes;
a slowed version of the factory caught by the gate; one-line errors (exit 2) for a missing optional
library, bad spec syntax, a factory that raises and one returning a non-module.

The latency test uses a work clock: virtual time advances 1 ms per Conv2d forward (and per anchor
call), so the slowed model (its convolution run three times) is exactly ~3x slower and nothing
depends on this machine's real speed. timm / torchvision specs run only when those libraries
import (skipped otherwise, with the reason, as `pytest -ra` prints).
"""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from _external import require
from torch import nn

from rexbench.cli import run
from rexbench.gate.checks import DEFAULT_CHECKS
from rexbench.measure.config import RunConfig

# Net(width=8): Conv2d(3, 8, 3, padding=1) -> global average pool -> Linear(8, 10).
# params: conv 8*3*9 + 8 = 224, linear 8*10 + 10 = 90 -> 314.
# macs_conv at 3xHxW: H*W * 8 * 3*9 (conv) + 8*10 (linear).
PARAMS = 314
(LATENCY_CHECK,) = [c for c in DEFAULT_CHECKS if c.startswith("latency")]


def macs(height: int, width: int, channels: int = 8) -> int:
    return height * width * channels * 27 + channels * 10


NETS = textwrap.dedent(
    """
    from torch import nn

    REPEAT = 1  # the slowed version of this file sets 3: the same model, its conv run 3 times


    class Net(nn.Module):
        def __init__(self, width=8):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(width, 10)

        def forward(self, x):
            for _ in range(REPEAT):
                y = self.conv(x)
            return self.fc(self.pool(y).flatten(1))


    def build(width: int = 8):
        return Net(width)


    build.default_input_shape = (3, 32, 32)


    def noshape():
        return Net()


    def broken():
        raise ValueError("width must be positive")


    def not_a_module():
        return 42
    """
)
SPEC = "py:nets.py:build"
FAST = ("--runs", "3", "--warmup", "1", "--config", "eager")  # a quick eager measurement


@pytest.fixture
def nets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = tmp_path holding nets.py (no pyproject.toml: default gate settings); the machine
    looks quiet to the gate's busy-machine guard whatever the real load is."""
    import rexbench.measure.machine.env as env

    path = tmp_path / "nets.py"
    path.write_text(NETS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(env, "cpu_snapshot", lambda: {"time": "now", "loadavg": [0.0, 0.0, 0.0]})
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code: int, err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("rexbench: error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- count ----------------------------------------------------------------------------------------


def test_count_uses_the_factory_default_shape_and_the_options(nets: Path, capsys) -> None:
    code, out, err = cli(capsys, "count", SPEC, "py:./nets.py:build?width=4", "--json")
    assert code == 0, err
    first, second = json.loads(out)["counts"]
    assert first["model"] == SPEC and first["input_shape"] == [1, 3, 32, 32]
    assert (first["params_total"], first["macs_conv"]) == (PARAMS, macs(32, 32))
    assert second["model"] == "py:nets.py:build?width=4"  # canonical: ./ dropped
    assert second["macs_conv"] == macs(32, 32, channels=4)

    code, out, err = cli(capsys, "count", SPEC, "--input-shape", "3x16x24", "--json")
    assert code == 0, err
    (entry,) = json.loads(out)["counts"]
    assert entry["input_shape"] == [1, 3, 16, 24] and entry["macs_conv"] == macs(16, 24)

    code, out, err = cli(capsys, "count", "py:nets.py:noshape", "-r", "64", "--by-module", "--json")
    assert code == 0, err
    (entry,) = json.loads(out)["models"]
    assert entry["input_shape"] == [1, 3, 64, 64]
    assert entry["modules"][0]["macs_conv"] == macs(64, 64)

    code, out, err = cli(capsys, "count", SPEC)  # the table shows the canonical name
    assert code == 0 and SPEC in out and f"{macs(32, 32):,}" in out


def test_a_model_without_a_default_input_says_what_to_pass(nets: Path, capsys) -> None:
    for command in (["count"], ["profile", "--runs", "3", "--config", "eager"]):
        code, _, err = cli(capsys, *command, "py:nets.py:noshape")
        one_error_line(code, err, "py:nets.py:noshape", "--input-shape 3xHxW", "--resolution N")
    code, _, err = cli(capsys, "baseline", "save", "py:nets.py:noshape", "--counts-only")
    one_error_line(code, err, "--input-shape 3xHxW")


def test_input_sizes_are_checked_before_anything_is_built(nets: Path, capsys) -> None:
    code, _, err = cli(capsys, "count", SPEC, "--input-shape", "3x5000x32")
    one_error_line(code, err, "at most 4096", SPEC)
    code, _, err = cli(capsys, "count", SPEC, "--input-shape", "3x64x64", "-r", "32")
    one_error_line(code, err, "disagree")
    code, _, err = cli(capsys, "count", "rexnet_x1.0", "--input-shape", "3x16x16")
    one_error_line(code, err, "resolution must be between 32")


# --- profile, baseline save, gate, report, plot ---------------------------------------------------


def test_profile_baseline_and_gate_end_to_end(nets: Path, tmp_path: Path, capsys) -> None:
    code, out, err = cli(
        capsys, "profile", SPEC, "py:nets.py:build?width=4", *FAST, "--out", "results", "--json"
    )
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [r["model"] for r in rows] == [SPEC, "py:nets.py:build?width=4"]
    assert [r["macs_conv"] for r in rows] == [macs(32, 32), macs(32, 32, channels=4)]
    paths = [Path(r["record"]) for r in rows]
    for path in paths:  # file names sanitised, the spec itself stored as it is
        assert path.is_file() and not set(path.name) & set(":?&/=")
    record = json.loads(paths[1].read_text())
    assert record["model"]["spec"] == "py:nets.py:build?width=4"
    assert record["model"]["kwargs"] == {"width": 4}
    assert record["model"]["provenance"] == {
        "spec": "py:nets.py:build?width=4",
        "source": "py",
        "kwargs": {"width": 4},
        "module": None,
        "file": str(nets.resolve()),
        "sha256": sha256(nets),
        "factory": "build",
    }
    assert record["counts"]["input_shape"] == [1, 3, 32, 32]

    code, out, err = cli(
        capsys, "baseline", "save", "--from", "results", "--dir", "baselines", "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert len(data["records"]) == 2
    entry = data["counts"][SPEC]
    assert entry["resolution"] == 32 and entry["macs_conv"] == macs(32, 32)
    assert entry["params_total"] == PARAMS and entry["source_sha256"] == sha256(nets)
    assert entry["macs_conv@224"] == macs(224, 224)

    code, out, err = cli(
        capsys, "gate", SPEC, "--baseline", "baselines", "--from", "results", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    outcomes = {v["check"]: v["outcome"] for v in report["verdicts"]}
    assert outcomes["params_total:="] == outcomes["macs_conv@32:="] == "pass"
    assert outcomes[LATENCY_CHECK] == "inconclusive"  # 3 samples: too few to judge
    assert report["notes"] == []

    code, out, err = cli(capsys, "gate", SPEC, "--baseline", "baselines", "--counts-only", "--json")
    assert code == 0, err
    assert {v["outcome"] for v in json.loads(out)["verdicts"]} == {"pass"}

    code, out, err = cli(capsys, "report", "results", "--json")
    assert code == 0, err
    assert SPEC in out and "py:nets.py:build?width=4" in out
    # Figure 3 needs a top-1: the paper has none for an external model, the user gives it
    code, out, err = cli(capsys, "plot", "results", "--all-families", "--out", "fig.png", "--json")
    one_error_line(code, err, "nothing to plot", "--top1 SPEC=PCT")  # nothing to draw without one
    assert not (tmp_path / "fig.png").exists()
    code, out, err = cli(
        capsys,
        "plot",
        "results",
        "--all-families",
        "--top1",
        f"py:./nets.py:build={71.5}",
        "--out",
        "fig.png",
        "--json",
    )
    assert code == 0, err
    flops, cpu, _ = json.loads(out)["panels"]
    assert flops["lines"] == ["py"] and cpu["lines"] == ["py"]
    assert (tmp_path / "fig.png").is_file()
    code, _, err = cli(capsys, "plot", "results", "--top1", "py:nets.py:build=high")
    one_error_line(code, err, "--top1", "SPEC=PCT")


def test_plot_labels_external_points_with_the_canonical_spec(nets: Path) -> None:
    from rexbench.records.store import load_records
    from rexbench.report.figure3 import figure3

    _profile_with_work_clock(SPEC, "results")
    records = load_records([Path("results")])
    fig = figure3(records, families=None, top1={SPEC: 71.5})
    flops_panel = fig.axes[0]
    assert [t.get_text() for t in flops_panel.texts] == [SPEC]
    (line,) = flops_panel.get_lines()
    assert list(line.get_ydata()) == [71.5]
    assert list(line.get_xdata()) == [macs(32, 32) / 1e9]
    assert f"Top-1 given with --top1 (not the paper's): {SPEC}." in fig.get_supxlabel()


@pytest.mark.slow
def test_sweep_of_external_models_resumes_per_input_shape(nets: Path, capsys) -> None:
    fast = [*FAST, "--out", "results", "--json"]
    code, out, err = cli(capsys, "sweep", SPEC, "py:nets.py:build?width=4", *fast)
    assert code == 0, err
    assert [r["model"] for r in json.loads(out)["measured"]] == [SPEC, "py:nets.py:build?width=4"]
    code, out, err = cli(capsys, "sweep", SPEC, *fast)  # resumed: already measured
    assert code == 0, err
    data = json.loads(out)
    assert data["measured"] == [] and [r["model"] for r in data["skipped"]] == [SPEC]
    code, out, err = cli(capsys, "sweep", SPEC, "--input-shape", "3x16x16", *fast)  # new input
    assert code == 0, err
    (row,) = json.loads(out)["measured"]
    assert json.loads(Path(row["record"]).read_text())["counts"]["input_shape"] == [1, 3, 16, 16]


def test_a_model_without_a_default_input_is_profiled_and_gated(nets: Path, capsys) -> None:
    spec = "py:nets.py:noshape"
    code, _, err = cli(
        capsys,
        "baseline",
        "save",
        spec,
        "--input-shape",
        "3x32x32",
        *FAST,
        "--dir",
        "baselines",
        "--json",
    )
    assert code == 0, err
    counts = json.loads(Path("baselines/counts.json").read_text())["models"][spec]
    assert counts["resolution"] == 32 and counts["macs_conv"] == macs(32, 32)
    (saved,) = [p for p in Path("baselines").rglob("*.json") if p.name != "counts.json"]
    assert json.loads(saved.read_text())["run"]["config"]["input_shape"] == [3, 32, 32]

    # counted now at the baseline's inputs (the model still declares none of its own)
    code, out, err = cli(capsys, "gate", spec, "--baseline", "baselines", "--counts-only", "--json")
    assert code == 0, err
    checks = {v["check"] for v in json.loads(out)["verdicts"]}
    assert {"macs_conv@32:=", "macs_conv@224:="} <= checks


class WorkClock:
    """Virtual perf_counter_ns: 1 ms (+ a small deterministic jitter) per unit of work done."""

    def __init__(self) -> None:
        self.ns = 0
        self.units = 0

    def tick(self) -> None:
        self.units += 1
        self.ns += 1_000_000 + (self.units * 7919) % 20_000

    def __call__(self) -> int:
        return self.ns


def _profile_with_work_clock(spec: str, out: str) -> None:
    """Records of `spec` whose samples count the convolutions it runs (30 runs: enough for the
    gate's latency rule), written under `out`."""
    from rexbench.measure.run.parts import REAL
    from rexbench.measure.run.profile import profile_models
    from rexbench.measure.timing.anchor import Anchor

    clock = WorkClock()

    def on_forward(module: nn.Module, args: object, output: object) -> None:
        if isinstance(module, nn.Conv2d):
            clock.tick()

    anchor = Anchor("work", 0, "cpu", 1, 1, clock.tick, lambda: None, "one unit of work")
    handle = torch.nn.modules.module.register_module_forward_hook(on_forward)
    try:
        config = RunConfig.preset("eager", runs=60, warmup=1)  # p10 needs >= 50 samples
        parts = replace(REAL, make_anchor=lambda device, threads: anchor, clock=clock)
        profile_models([spec], [config], out_dir=out, parts=parts)
    finally:
        handle.remove()


def test_the_gate_catches_a_slowed_factory(nets: Path, capsys) -> None:
    base_hash = sha256(nets)
    _profile_with_work_clock(SPEC, "base")
    code, _, err = cli(capsys, "baseline", "save", "--from", "base", "--dir", "baselines")
    assert code == 0, err

    _profile_with_work_clock(SPEC, "same")  # A/A: the unchanged factory passes
    code, out, err = cli(
        capsys, "gate", SPEC, "--baseline", "baselines", "--from", "same", "--json"
    )
    assert code == 0, err
    verdicts = json.loads(out)["verdicts"]
    latency = [v for v in verdicts if v["check"].startswith("latency")]
    assert latency and {v["outcome"] for v in latency} == {"pass"}

    nets.write_text(NETS.replace("REPEAT = 1", "REPEAT = 3"))  # the same model, 3x the work
    slow_hash = sha256(nets)
    _profile_with_work_clock(SPEC, "slow")
    code, out, err = cli(
        capsys, "gate", SPEC, "--baseline", "baselines", "--from", "slow", "--json"
    )
    assert code == 1, err
    report = json.loads(out)
    (latency,) = [v for v in report["verdicts"] if v["check"] == LATENCY_CHECK]
    assert latency["outcome"] == "regression"
    assert latency["normalisation"] == "anchor" and 2.9 < latency["ratio"] < 3.1
    assert latency["details"]["source_changed"] == {
        "baseline_sha256": base_hash,
        "current_sha256": slow_hash,
    }
    counts = {
        v["check"]: (v["outcome"], v["current"])
        for v in report["verdicts"]
        if v["config"] == "counts"
    }
    assert counts["params_total:="] == ("pass", PARAMS)  # the same model...
    assert counts["macs_conv@32:="] == ("regression", 3 * (macs(32, 32) - 80) + 80)  # ...3 convs
    (note,) = report["notes"]
    assert f"sha256 {base_hash[:12]} -> {slow_hash[:12]}" in note and "compared anyway" in note

    code, out, err = cli(
        capsys, "gate", SPEC, "--baseline", "baselines", "--from", "slow", "--require-same-source"
    )
    one_error_line(code, err, "source changed since the baseline", "--require-same-source")
    assert out == ""
    # without --from the refusal comes before any measurement
    code, _, err = cli(capsys, "gate", SPEC, "--baseline", "baselines", "--require-same-source")
    one_error_line(code, err, "source changed since the baseline")
    assert "measuring" not in err


# --- one-line errors --------------------------------------------------------------------------

COMMANDS = {
    "count": ["count"],
    "profile": ["profile", *FAST],
    "sweep": ["sweep", *FAST],
    "baseline": ["baseline", "save", "--counts-only"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(
    "spec, needles",
    [
        ("py:nets.py", ["missing factory name", "py:path/to/file.py:FACTORY"]),
        ("tim:resnet50", ["unknown model source 'tim:'", "Did you mean 'timm:resnet50'?"]),
        ("py:nets.py:build?width", ["malformed keyword argument 'width'"]),
        (
            "py:nets.py:broken",
            ["py:nets.py:broken: broken() raised ValueError: width must be positive"],
        ),
        ("py:nets.py:not_a_module", ["not_a_module() returned int, not a torch.nn.Module"]),
        ("py:nets.py:nothing", ["has no attribute 'nothing'"]),
        ("py:missing.py:build", ["file missing.py not found"]),
    ],
)
def test_bad_specs_are_one_line_and_exit_2(nets, capsys, command, spec, needles) -> None:
    code, out, err = cli(capsys, *COMMANDS[command], spec)
    one_error_line(code, err, *needles)
    assert not list(Path().rglob("*__*.json"))  # no record written


@pytest.mark.parametrize("command", list(COMMANDS) + ["gate"])
@pytest.mark.parametrize("library", ["timm", "torchvision"])
def test_a_missing_library_says_what_to_install(nets, capsys, monkeypatch, command, library):
    monkeypatch.setitem(sys.modules, library, None)  # import fails as if it were not installed
    args = COMMANDS.get(command, ["gate", "--counts-only"])
    if command == "gate":  # a baseline saved while it was installed
        Path("baselines").mkdir()
        Path("baselines/counts.json").write_text(
            json.dumps(
                {
                    "schema_version": 1,
                    "kind": "counts",
                    "models": {f"{library}:resnet18": {"resolution": 224, "params_total": 1}},
                }
            )
        )
        args = [*args, "--baseline", "baselines"]
    code, _, err = cli(capsys, *args, f"{library}:resnet18")
    line = one_error_line(code, err, f"{library} is not installed", "pins your torch")
    assert f'"torch=={torch.__version__}"' in line and "torchvision==0." in line


# --- real timm / torchvision (skipped when they do not import) -----------------------------------


@pytest.mark.external
def test_timm_spec_in_count_and_profile(nets, capsys) -> None:
    require("timm")
    spec = "timm:resnet18?num_classes=10"
    code, out, err = cli(capsys, "count", spec, "--input-shape", "3x64x64", "--json")
    assert code == 0, err
    (entry,) = json.loads(out)["counts"]
    assert entry["model"] == spec and entry["input_shape"] == [1, 3, 64, 64]
    assert entry["params_total"] == 11_689_512 - 513 * 990  # timm's resnet18, 10 classes
    code, out, err = cli(capsys, "profile", "timm:test_resnet", *FAST, "--out", "results", "--json")
    assert code == 0, err
    (row,) = json.loads(out)["rows"]
    record = json.loads(Path(row["record"]).read_text())
    assert record["model"]["provenance"]["library"] == "timm"
    assert record["counts"]["input_shape"] == [1, 3, 160, 160]  # its pretrained_cfg input_size


@pytest.mark.external
def test_torchvision_spec_in_count_and_profile(nets, capsys) -> None:
    require("torchvision")
    code, out, err = cli(capsys, "count", "torchvision:resnet18", "-r", "64", "--json")
    assert code == 0, err
    (entry,) = json.loads(out)["counts"]
    assert entry["model"] == "torchvision:resnet18" and entry["params_total"] == 11_689_512
    code, out, err = cli(
        capsys,
        "profile",
        "torchvision:mobilenet_v3_small",
        "-r",
        "64",
        *FAST,
        "--out",
        "results",
        "--json",
    )
    assert code == 0, err
    (row,) = json.loads(out)["rows"]
    record = json.loads(Path(row["record"]).read_text())
    assert record["model"]["provenance"]["library"] == "torchvision"
