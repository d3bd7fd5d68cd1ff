"""One worker process per configuration (rexbench.measure.run.workers), with real processes: each
configuration in its own pid with its own threads and allocator, records of the same schema as in
one process, and a worker that crashes, aborts, is killed or hangs kept to its configuration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _processes import alive
from _signals import default_sigint

from rexbench.cli import run
from rexbench.measure.config import RunConfig
from rexbench.measure.machine import allocators
from rexbench.measure.run.profile import profile_models
from rexbench.measure.run.workers import Isolation
from rexbench.records.store import load_records

# A few convolutions at 32x32; Faulty misbehaves on its `after`-th call with a channels-last input
# under inference mode: only in the worker of a channels-last configuration, on its output check
# (call 1), its warm-up or its timed calls; never while this process counts the model.
NETS = textwrap.dedent(
    """
    import ctypes, os, signal, time

    import torch
    from torch import nn


    class Net(nn.Module):
        default_input_shape = (3, 32, 32)

        def __init__(self, width=8):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            )
            self.fc = nn.Linear(width, 2)

        def forward(self, x):
            return self.fc(self.body(x).mean((2, 3)))


    class Faulty(Net):
        def __init__(self, how="segv", after=1):
            super().__init__()
            self.how, self.after, self.calls = how, after, 0

        def forward(self, x):
            if torch.is_inference_mode_enabled() and not x.is_contiguous():
                self.calls += 1
                if self.calls >= self.after:
                    if self.how == "segv":
                        ctypes.string_at(0)
                    if self.how == "abort":
                        os.abort()
                    if self.how == "kill":
                        os.kill(os.getpid(), signal.SIGKILL)
                    time.sleep(3600)
            return super().forward(x)


    class Slow(Net):
        def forward(self, x):
            if torch.is_inference_mode_enabled():
                time.sleep(0.005)
            return super().forward(x)
    """
)
NET = "py:nets.py:Net"
ABORT_LINE = next(i for i, line in enumerate(NETS.splitlines(), 1) if "os.abort()" in line)
BOTH = ["--config", "eager,channels_last"]


@pytest.fixture
def nets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "nets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def configs(*names: str, threads: int = 1) -> list[RunConfig]:
    return [RunConfig.preset(name, threads=threads) for name in names]


def test_each_configuration_runs_in_a_worker_of_its_own_with_its_threads(nets: Path) -> None:
    eager, cl = RunConfig.preset("eager", threads=1), RunConfig.preset("channels_last", threads=2)
    records = profile_models([NET], [eager, cl], runs=4, warmup=1)
    workers = [r.env["worker"] for r in records]
    assert len({w["pid"] for w in workers} | {os.getpid()}) == 3
    assert [w["threads"] for w in workers] == [1, 2]
    assert [w["allocator"] for w in workers] == ["steady", "steady"]
    for record, threads in zip(records, (1, 2), strict=True):
        assert record.timing.backend["threads"] == threads
        assert record.env["threads"]["torch_num_threads"] == threads
        assert record.env["threads"]["env"] == {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
        }
        assert record.env["worker"]["env"] == {
            **allocators.STEADY_ENV,
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
        }
        assert record.env["allocator"]["policy"] == "steady"
        assert len(record.samples) == 4 and len(record.timing.anchor_ns) == 4
        assert record.valid and record.parity["rel_l2"] < 1e-5
        assert record.timing.preparation["input_shape"] == [1, 3, 32, 32]
    assert records[0].run_id == records[1].run_id  # timed in the same rounds


def keys(data: object, prefix: str = "") -> set[str]:
    """Every key path of a record's dict, down to the dicts inside it (lists are leaves)."""
    if not isinstance(data, dict):
        return set()
    out = set()
    for key, value in data.items():
        out.add(prefix + key)
        out |= keys(value, f"{prefix}{key}.")
    return out


def test_records_of_workers_have_the_fields_of_records_measured_in_one_process(nets: Path):
    measured = {}
    for isolation in (Isolation(), Isolation(in_process=True)):
        (record,) = profile_models([NET], configs("eager"), runs=3, warmup=1, isolation=isolation)
        measured[isolation.in_process] = keys(record.to_dict())
    # the worker's own: env.worker, and the thread variables it was started with
    extra = {k for k in measured[False] - measured[True] if not k.startswith("env.threads.env.")}
    assert {k for k in extra if not k.startswith("env.worker.")} == {"env.worker"}
    fields = {k.split(".")[2] for k in extra if k.count(".") == 2}
    assert fields == {"pid", "allocator", "threads", "env", "idle"}
    assert measured[True] <= measured[False]


def profile_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], dict]:
    """`rexbench profile` of Faulty under eager and channels-last: exit code, the stderr lines
    that are not progress, and the records written, by configuration."""
    code = run(["profile", *args, *BOTH, "--threads", "1", "--warmup", "1", "--out", "runs"])
    err = capsys.readouterr().err.splitlines()
    records = {r.run.label: r for r in load_records(Path("runs"))}
    return code, [line for line in err if line.startswith(("failed", "invalid"))], records


def test_a_segfault_while_preparing_is_one_line_and_an_invalid_record(nets: Path, capsys):
    code, lines, records = profile_cli(capsys, "py:nets.py:Faulty?how=segv&after=1", "--runs", "3")
    assert code == 1
    (line,) = lines
    assert line.startswith(
        "failed: py:nets.py:Faulty?after=1&how=segv channels_last: the worker crashed "
        "(SIGSEGV: segmentation fault) in forward (nets.py:"
    ), line
    assert records["eager"].valid and len(records["eager"].samples) == 3
    broken = records["channels_last"]
    assert not broken.valid and broken.samples == [] and broken.summary == {}
    assert broken.parity == {
        "valid": False,
        "reason": line.split("channels_last: ")[1],
        "fault": "crashed",
    }


def test_an_abort_in_the_timed_calls_keeps_the_chunks_before_it(nets: Path, capsys):
    # calls with a channels-last input: 1 output check, 1 warm-up, 10 + 2 timed: the 13th aborts
    spec = "py:nets.py:Faulty?how=abort&after=13"
    code, lines, records = profile_cli(capsys, spec, "--runs", "12")
    assert code == 1
    assert lines == [
        f"failed: {spec.replace('how=abort&after=13', 'after=13&how=abort')} channels_last: "
        f"the worker crashed (SIGABRT: aborted) in forward (nets.py:{ABORT_LINE})"
    ]
    assert len(records["eager"].samples) == 12 and records["eager"].valid
    broken = records["channels_last"]
    assert len(broken.samples) == 10 and not broken.valid  # the first chunk, then the abort
    assert broken.parity["fault"] == "crashed" and broken.summary["n"] == 10


def test_a_killed_worker_is_said_to_be_killed(nets: Path, capsys):
    code, lines, records = profile_cli(capsys, "py:nets.py:Faulty?how=kill&after=2", "--runs", "3")
    assert code == 1
    (line,) = lines
    assert "channels_last: the worker was killed (SIGKILL" in line, line
    assert records["channels_last"].parity["fault"] == "killed"
    assert records["eager"].valid


@pytest.mark.slow
def test_a_worker_that_hangs_is_stopped_at_the_timeout(nets: Path, capsys):
    spec = "py:nets.py:Faulty?how=hang&after=2"
    code, lines, records = profile_cli(capsys, spec, "--runs", "3", "--timeout", "6")
    assert code == 1
    (line,) = lines
    assert line.endswith("channels_last: the worker ran past --timeout 6 s and was stopped (hung?)")
    assert records["channels_last"].parity["fault"] == "timeout"
    assert len(records["eager"].samples) == 3


def test_in_process_keeps_every_configuration_here(nets: Path, capsys):
    code = run(["profile", NET, *BOTH, "--runs", "2", "--warmup", "0", "--in-process", "--json"])
    assert code == 0, capsys.readouterr().err
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert all("worker" not in r.env for r in load_records([Path(r["record"]) for r in rows]))


@pytest.mark.parametrize("policy", ["jemalloc", "tcmalloc"])
def test_a_preloaded_allocator_is_loaded_in_the_worker(nets: Path, policy: str) -> None:
    library = allocators.find_library(policy)
    if library is None:
        pytest.skip(f"{policy} is not installed here ({allocators.LIBRARIES[policy].package})")
    isolation = Isolation(allocator=policy)
    (record,) = profile_models([NET], configs("eager"), runs=2, warmup=1, isolation=isolation)
    assert record.env["allocator"] == {"policy": policy, "library": library, "loaded": True}
    assert record.env["worker"]["env"]["LD_PRELOAD"] == library


def test_a_missing_allocator_is_one_line_before_anything_is_measured(nets, monkeypatch, capsys):
    missing = allocators.Library(("libnosuchalloc.so.9",), "libnosuchalloc9")
    monkeypatch.setitem(allocators.LIBRARIES, "jemalloc", missing)
    code = run(["profile", NET, "--allocator", "jemalloc", "--runs", "2", "--out", "runs"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.splitlines() == [err]
    assert err == (
        "rexbench: error: --allocator jemalloc needs libnosuchalloc.so.9, which is not on this "
        "machine; install it (Debian/Ubuntu: apt install libnosuchalloc9) or use --allocator "
        "steady or system"
    )
    assert not Path("runs").exists()


def processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process (from /proc/*/stat and cmdline)."""
    out = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
            command = (entry / "cmdline").read_bytes() if stat else b""
        except OSError:
            continue
        if stat:
            out[int(entry.name)] = (int(stat.rpartition(")")[2].split()[1]), command)
    return out


def workers_of(pid: int) -> set[int]:
    """The worker processes of `pid`: the children of its fork servers (or its own children
    running a worker, where a worker is a new interpreter)."""
    table = processes()
    servers = {p for p, (parent, cmd) in table.items() if parent == pid and b"forkserver" in cmd}
    return {
        p
        for p, (parent, cmd) in table.items()
        if parent in servers or (parent == pid and b"run.worker" in cmd)
    }


def servers_of(pid: int) -> set[int]:
    return {p for p, (parent, cmd) in processes().items() if parent == pid and b"forkserver" in cmd}


@pytest.mark.slow
def test_ctrl_c_exits_130_keeps_the_finished_records_and_leaves_no_worker(nets: Path) -> None:
    args = [
        sys.executable,
        "-m",
        "rexbench",
        "profile",
        NET,
        "py:nets.py:Slow",
        *BOTH,
        "--threads",
        "1",
        "--runs",
        "300",
        "--warmup",
        "1",
        "--out",
        "runs",
    ]
    profile = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
    )
    first: set[int] = set()  # the workers of the first model
    deadline = time.monotonic() + 180
    while len(list(Path("runs").rglob("*.json"))) < 2 and time.monotonic() < deadline:
        first |= workers_of(profile.pid)
        time.sleep(0.05)
    second = workers_of(profile.pid) - first  # the second model's, once they have started
    while not second and time.monotonic() < deadline:
        time.sleep(0.05)
        second = workers_of(profile.pid) - first
    assert len(first) == 2 and second, (first, second, profile.poll())
    servers = servers_of(profile.pid)
    assert len(servers) == 1  # one environment (1 thread, steady): one fork server
    profile.send_signal(signal.SIGINT)
    _, err = profile.communicate(timeout=60)
    assert profile.returncode == 130, err
    assert "interrupted: 2 finished record(s) kept" in err and "Traceback" not in err
    assert not [pid for pid in first | second | servers if alive(pid)]
    files = [p for p in Path("runs").rglob("*") if p.is_file()]
    assert len(files) == 2 and not any(p.name.startswith(".") for p in files)
    assert {r.model.spec for r in load_records(Path("runs"))} == {NET}


def test_a_sweep_records_the_fault_and_exits_1(nets: Path, capsys) -> None:
    spec = "py:nets.py:Faulty?how=segv&after=1"
    args = ["sweep", spec, *BOTH, "--threads", "1", "--runs", "3", "--warmup", "0", "--out", "runs"]
    assert run([*args, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    rows = {row["config"]: row for row in data["measured"]}
    assert rows["eager"]["valid"] and rows["eager"]["fault"] is None
    assert not rows["channels_last"]["valid"] and rows["channels_last"]["fault"] == "crashed"
    assert [f["error"].split(": the worker ")[1][:9] for f in data["failed"]] == ["crashed ("]
    assert run([*args, "--force"]) == 1  # the table says why the record is invalid
    assert "INVALID (its worker crashed)" in capsys.readouterr().out


@pytest.mark.slow
def test_a_compiled_configuration_counts_its_graphs_in_its_worker(nets: Path) -> None:
    (record,) = profile_models([NET], configs("compile"), runs=3, warmup=2)
    assert record.timing.validity["recompiles"] == {
        "warmup_graphs": 0,
        "timing_graphs": 0,
        "cudagraph_skips": 0,
    }
    assert record.timing.compile_s > 0 and record.valid
    assert not any(w.startswith("recompiled") for w in record.warnings)
