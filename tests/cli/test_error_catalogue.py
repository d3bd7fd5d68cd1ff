"""Every way a newcomer gets rexbench wrong, run through the real command line.

Each bad input (a name, a spec, an option, weights, records, baselines, an output path; a closed
or full stdout, a signal) must end as exactly one line on stderr, `rexbench: error: ...`, saying what
is wrong and what to do, with exit code 2, nothing on stdout (no output of the command comes before
its error), no traceback, and no stored file created or changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _signals import default_sigint
from _synthetic import make

from rexbench.cli import run
from rexbench.records.store import write_record

pytestmark = pytest.mark.usefixtures("one_thread")

NETS = """
import torch.nn as nn
def build(width=1.0):
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
build.default_input_shape = (3, 32, 32)
"""
EXITS = "import sys\nsys.exit(3)\ndef build():\n    pass\n"
ARGPARSE = """
import argparse
import torch.nn as nn
parser = argparse.ArgumentParser()
parser.add_argument("--width", type=float, required=True)
args = parser.parse_args()
def build():
    return nn.Linear(3, 3)
"""
EXITS_IN_FACTORY = "import sys\ndef build():\n    sys.exit('no model today')\n"


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """A working folder with every kind of bad file a user meets."""
    root = tmp_path_factory.mktemp("catalogue")
    (root / "nets.py").write_text(NETS)
    (root / "exits.py").write_text(EXITS)
    (root / "argparse_on_import.py").write_text(ARGPARSE)
    (root / "exits_in_factory.py").write_text(EXITS_IN_FACTORY)
    (root / "garbage.pth").write_bytes(b"not a checkpoint")
    (root / "blocker").write_text("a file where a folder should be")
    (root / "empty").mkdir()
    corrupt = root / "corrupt" / "m"
    corrupt.mkdir(parents=True)
    (corrupt / "rexnet_x1.0__eager__0.json").write_text('{"schema_version": 1, "kind": "profile", ')
    future = root / "future" / "m"
    future.mkdir(parents=True)
    (future / "r.json").write_text(json.dumps({"schema_version": 99, "kind": "profile"}))
    notrecords = root / "notrecords"
    notrecords.mkdir()
    (notrecords / "analysis.json").write_text(json.dumps({"baseline": 1, "kinds": []}))
    write_record(make("mobilenet_v2", 10.0), root / "mobile")
    write_record(make("rexnet_x1.0", 10.0), root / "records")
    damaged = root / "damaged"
    damaged.mkdir()
    (damaged / "counts.json").write_text('{"schema_version": 1, "kind": "counts", "models": {"a":')
    return root


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def one_line(code: int, out: str, err: str, needles: tuple[str, ...]) -> str:
    lines = err.splitlines()
    assert code == 2, (code, err)
    assert out == "", out
    assert len(lines) == 1 and lines[0].startswith("rexbench: error: "), err
    assert "Traceback" not in err and "╭" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


M = "rexnet_x1.0"
OVERCOMMIT = Path("/proc/sys/vm/overcommit_memory")
#: A 1.2 TB tensor fails at once (torch's allocator error) unless the kernel grants everything.
REFUSES_HUGE_ALLOCATIONS = OVERCOMMIT.exists() and OVERCOMMIT.read_text().strip() != "1"
FAST = ["--runs", "3", "--warmup", "1", "--config", "eager"]
CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    # ------------------------------------------------------------------------- names and specs
    ("typo", ["profile", "rexnet_x1.O", *FAST], ("width multiplier '1.o' is not a number", "rexnet_x1.0")),
    ("unknown", ["profile", "resnet50", *FAST], ("unknown model 'resnet50'", "rexbench models")),
    ("width-too-big", ["profile", "rexnet_x9", *FAST], ("width multiplier must be in (0, 4]",)),
    ("width-empty-layer", ["profile", "rexnet_x0.0001", *FAST], ("empty layer", "rexnet_x0.00079")),
    ("glob-matches-nothing", ["count", "rexnet_x9*"], ("no built-in model matches 'rexnet_x9*'",)),
    ("unknown-source", ["profile", "tim:resnet50", *FAST], ("unknown model source 'tim:'", "timm:resnet50")),
    ("no-factory", ["profile", "py:nets.py", *FAST], ("missing factory name", "py:path/to/file.py:FACTORY")),
    ("no-file", ["profile", "py:missing.py:build", *FAST], ("file missing.py not found",)),
    ("bad-kwarg", ["profile", "py:nets.py:build?width", *FAST], ("malformed keyword argument 'width'",)),
    ("no-attribute", ["profile", "py:nets.py:bulid", *FAST], ("has no attribute 'bulid'", "Did you mean: build")),
    ("py-sys-exit", ["profile", "py:exits.py:build", *FAST], ("exits.py called sys.exit(3) while it was imported", "file's doing")),
    ("py-argparse", ["profile", "py:argparse_on_import.py:build", *FAST], ("called sys.exit(2)", "required: --width")),
    ("py-exit-in-factory", ["profile", "py:exits_in_factory.py:build", *FAST], ("sys.exit('no model today')", "build() built the model")),
    ("download", ["profile", "timm:resnet18?pretrained=true", *FAST], ("would download weights", "--weights PATH")),
    ("sweep-set", ["sweep", "tableZ", "--runs", "3"], ("neither a set", "table5")),
    ("family", ["models", "--family", "Transformers"], ("unknown model family 'Transformers'", "ReXNet")),
    # ------------------------------------------------------------------------------- options
    ("type-int", ["profile", M, "--runs", "abc"], ("Invalid value for '--runs': 'abc'", "rexbench profile --help")),
    ("type-enum", ["profile", M, "--dtype", "fp64"], ("Invalid value for '--dtype': 'fp64'",)),
    ("no-such-option", ["profile", M, "--rnus", "3"], ("No such option: --rnus", "--runs")),
    ("no-such-command", ["prfile", M], ("No such command 'prfile'", "Did you mean 'profile'")),
    ("missing-argument", ["profile"], ("Missing argument", "rexbench profile --help")),
    ("option-needs-value", ["models", "--family"], ("'--family' requires an argument", "rexbench models --help")),
    ("runs-zero", ["profile", M, "--runs", "0"], ("runs must be an integer >= 1",)),
    ("device", ["profile", M, "--device", "tpu"], ("unknown device 'tpu'", "cpu, cuda or cuda:N")),
    ("config", ["profile", M, "--config", "turbo"], ("unknown configuration 'turbo'", "compile_cl")),
    ("config-and-switch", ["profile", M, "--config", "eager", "--compile"], ("--config names whole configurations",)),
    ("compile-mode", ["profile", M, "--no-compile", "--compile-mode", "max-autotune"], ("--compile-mode needs a compiled",)),
    ("shape-small", ["profile", M, "--input-shape", "3x8x8", *FAST], ("resolution must be between 32",)),
    ("shape-text", ["profile", M, "--input-shape", "big", *FAST], ("--input-shape",)),
    ("depth", ["count", M, "--depth", "-1"], ("--depth must be 0 or more",)),
    ("weights-two-models", ["count", M, "efficientnet_b0", "--weights", "garbage.pth"], ("exactly one model",)),
    ("plot-axis", ["plot", "records", "--x", "speed"], ("--x 'speed'", "params")),
    ("plot-top1", ["plot", "records", "--top1", "py:nets.py:build=high"], ("--top1", "SPEC=PCT")),
    ("plot-family", ["plot", "records", "--family", "Foo"], ("--family 'Foo'",)),
    ("gate-check", ["gate", M, "--counts-only", "--check", "latency.p10:lots"], ("latency.p10:lots",)),
    ("report-format", ["report", "records", "--figure-format", "gif"], ("Invalid value for '--figure-format'",)),
    # ------------------------------------------------------------------------------- weights
    ("weights-missing", ["count", M, "--weights", "nowhere.pth", "-r", "32"], ("nowhere.pth",)),
    ("weights-garbage", ["count", M, "--weights", "garbage.pth", "-r", "32"], ("garbage.pth",)),
    # ------------------------------------------------------------------------------- records
    ("report-empty", ["report", "empty"], ("no rexbench records in empty",)),
    ("report-not-records", ["report", "notrecords"], ("no rexbench records in notrecords",)),
    ("report-corrupt", ["report", "corrupt"], ("no readable record in corrupt", "not valid JSON")),
    ("report-future", ["report", "future"], ("no readable record in future", "newer rexbench")),
    ("report-missing", ["report", "nowhere"], ("no such file or folder: nowhere",)),
    ("report-default", ["report"], ("no records yet in runs/", "results/example")),
    ("plot-empty", ["plot", "empty", "--out", "f.png"], ("no rexbench records in empty",)),
    ("plot-corrupt", ["plot", "corrupt", "--out", "f.png"], ("no readable record in corrupt",)),
    ("plot-nothing", ["plot", "mobile", "--out", "f.png"], ("nothing to plot", "--all-families")),
    ("report-reference", ["report", "records", "--reference", "zzz"], ("--reference 'zzz' matches no machine",)),
    # ----------------------------------------------------------------------------- baselines
    ("gate-no-baseline", ["gate", M, "--counts-only", "--baseline", "empty"], ("no counts baseline at empty/counts.json",)),
    ("gate-damaged", ["gate", "--counts-only", "--all", "--baseline", "damaged"], ("is damaged", "git checkout -- damaged/counts.json")),
    ("save-damaged", ["baseline", "save", M, "--counts-only", "--dir", "damaged"], ("nothing was written", "--counts-only --all")),
    ("save-nothing", ["baseline", "save", "--dir", "empty"], ("give MODEL... or --all",)),
    ("save-from-and-counts", ["baseline", "save", "--counts-only", "--from", "records", "--dir", "empty"], ("drop --from",)),
    ("gate-from-missing", ["gate", M, "--from", "nowhere", "--baseline", "empty"], ("nowhere",)),
    # ---------------------------------------------------------------------------- output paths
    ("profile-out", ["profile", M, *FAST, "--out", "blocker"], ("cannot write records to blocker", "--out")),
    ("sweep-out", ["sweep", M, *FAST, "--out", "blocker"], ("cannot write records to blocker", "--out")),
    ("save-dir", ["baseline", "save", M, "--counts-only", "--dir", "blocker/b"], ("--dir",)),
    ("plot-suffix", ["plot", "records", "--out", "figure.gif"], ("--out figure.gif: use a file name ending in",)),
    ("report-out", ["report", "records", "--out", "blocker/report"], ("blocker",)),
    ("plot-out-under-file", ["plot", "records", "--out", "blocker/fig.png"], ("--out blocker/fig.png: blocker is a file, not a folder", "choose another --out")),
    ("history-plot-under-file", ["history", "--from", "records", "--plot", "blocker/h.svg"], ("--plot blocker/h.svg: blocker is a file",)),
    ("gate-summary-folder", ["gate", M, "--summary", "."], ("--summary .: that is a folder", "give a file")),
    ("gate-summary-no-folder", ["gate", M, "--summary", "nowhere/summary.md"], ("the folder nowhere does not exist",)),
    ("gate-summary-under-file", ["gate", M, "--summary", "blocker/summary.md"], ("blocker is a file, not a folder",)),
    ("history-summary-folder", ["history", "--from", "records", "--summary", "empty"], ("--summary empty: that is a folder",)),
    # ------------------------------------------------- what would fail after measuring fails first
    ("batch-memory", ["profile", M, "--batch-size", "1000000", *FAST], ("--batch-size 1000000: the input batch of rexnet_x1.0 (1000000 x 3x224x224 fp32) needs 602.1 GB and its activations roughly 17x that", "of memory available; use --batch-size")),
    ("batch-allocator", ["profile", "py:nets.py:build", "--batch-size", "100000000", *FAST], ("out of memory on cpu while running the preparation at batch size 100000000", "--batch-size 50000000")),
    ("gate-instructions-uncounted", ["gate", M, "--check", "instructions:+2%", "--baseline", "records"], ("have no instruction count", "baseline save rexnet_x1.0 --instructions")),
]  # fmt: skip


def test_the_catalogue_is_large() -> None:
    assert len(CASES) + len(STREAM_CASES) + 2 >= 40
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "argv", "needles"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_exit_2_and_touches_nothing(
    place, monkeypatch, capfd, name, argv, needles
):
    if name == "device" and torch.cuda.is_available():
        pytest.skip("the machine has CUDA")
    if name == "batch-allocator" and not REFUSES_HUGE_ALLOCATIONS:
        pytest.skip("this kernel grants any allocation (vm.overcommit_memory=1)")
    monkeypatch.chdir(place)
    before = snapshot(place)
    code = run(argv)
    out, err = capfd.readouterr()
    line = one_line(code, out, err, needles)
    assert "--out" not in line or name not in ("save-dir",)  # a hint names the command's own option
    assert snapshot(place) == before, "a failing command changed a stored file"


@pytest.mark.parametrize("command", ["profile", "sweep"])
def test_every_missing_package_is_named_in_the_one_line(place, monkeypatch, capfd, command):
    """ONNX Runtime, OpenVINO, timm and valgrind all missing: one line names them all, with one
    install command per kind, before anything is built (the packages are installed here: their
    modules are given names that do not exist, valgrind is taken off PATH)."""
    from rexbench.measure.backends.registry import BACKENDS

    monkeypatch.setattr(BACKENDS.get("ort"), "module", "rexbench_no_ort")
    monkeypatch.setattr(BACKENDS.get("openvino"), "module", "rexbench_no_ov")
    monkeypatch.setitem(sys.modules, "timm", None)  # import fails as if it were not installed
    monkeypatch.setenv("PATH", str(place / "empty"))
    monkeypatch.chdir(place)
    before = snapshot(place)
    argv = [command, "timm:resnet18", M, "--config", "eager,ort,openvino", *FAST[:4]]
    code = run(argv + ["--instructions"] if command == "profile" else argv)
    out, err = capfd.readouterr()
    runtimes_line = "ONNX Runtime (--config ort) and OpenVINO (--config openvino): pip install "
    needles = (
        "not installed",
        runtimes_line + "'rexbench[ort,openvino]'",
        "; timm (timm:resnet18): ",
    )
    line = one_line(code, out, err, needles)
    counted = command == "profile"  # sweep has no --instructions
    assert f"{4 if counted else 3} things this run needs" in line
    assert ("; valgrind (--instructions): apt install valgrind" in line) == counted
    assert snapshot(place) == before


# --------------------------------------------------------------------------- streams, signals

CLI = [sys.executable, "-m", "rexbench"]
STREAM_CASES = ["full-disk", "closed-pipe"]


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_a_full_disk_under_stdout_is_one_line_exit_2_never_1() -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*CLI, "gate", "--counts-only", M, "--json"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            timeout=300,
        )
    assert done.returncode == 2, done.stderr
    one_line(2, "", done.stderr, ("cannot write to stdout", "No space left on device"))


def test_a_closed_pipe_is_one_line_exit_2_never_1() -> None:
    proc = subprocess.Popen(
        [*CLI, "gate", "--counts-only", M, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader goes away before anything is written
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    one_line(2, "", err, ("cannot write to stdout", "broken pipe"))


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_a_signal_ends_a_command_in_one_line_and_keeps_no_partial_file(tmp_path, sig, code, word):
    (tmp_path / "nets.py").write_text(NETS)
    # ~20 s of counting: still busy at 4 s
    widths = [f"rexnet_x{w / 10:.1f}" for w in range(40, 20, -1)]
    proc = subprocess.Popen(
        [*CLI, "count", *widths],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        preexec_fn=default_sigint,
    )
    time.sleep(4)  # inside the imports or the counting
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert err.strip() == f"rexbench: {word}" and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nets.py"]
