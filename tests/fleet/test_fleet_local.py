"""`--cluster` on one machine: `local` (a cluster started in the process, stopped after), and a
driver already connected by `ray.init(num_cpus=2)`: the sweep, Ctrl-C, the rank study; the
one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _fleet import TINY, fresh_threads

from rexbench.cli import run
from rexbench.measure.machine.env import machine_id
from rexbench.records.store import load_records

ray = pytest.importorskip("ray")


def error_line(capsys, code: int, *needles: str) -> None:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("rexbench: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_errors_before_any_cluster_are_one_line(capsys, monkeypatch) -> None:
    spec = ["sweep", "rexnet_x1.0"]
    error_line(capsys, run([*spec, "--cluster", "127.0.0.1:1"]), "cannot reach 127.0.0.1:1")
    error_line(capsys, run([*spec, "--cluster", "head-node"]), "expected auto, local, HOST:PORT")
    error_line(capsys, run([*spec, "--nodes", "gpu=a100"]), "give --cluster too")
    error_line(capsys, run([*spec, "--cluster", "local", "--nodes", "gpu"]), "expected KEY=VALUE")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    error_line(capsys, run([*spec, "--cluster", "local"]), "pip install 'rexbench[cluster]'")
    error_line(capsys, run(["rank", "study", "--cluster", "local"]), "rexbench[cluster]")


@pytest.mark.slow
def test_cluster_local_measures_here_as_a_local_sweep_would(nets, tmp_path, capsys) -> None:
    out = tmp_path / "results"
    argv = ["sweep", nets["build"], *TINY, "--out", str(out), "--json"]
    assert run([*argv, "--cluster", "local"]) == 0
    (node,) = json.loads(capsys.readouterr().out)["nodes"]
    assert node["machine_id"] == machine_id() and len(node["measured"]) == 1
    assert not ray.is_initialized()  # the in-process cluster is stopped again
    (record,) = load_records(out)
    assert record.machine_id == machine_id() and (out / machine_id()).is_dir()
    assert record.env["threads"]["torch_num_threads"] == fresh_threads()
    assert run(argv) == 0  # the local sweep resumes from the fleet's record
    assert json.loads(capsys.readouterr().out)["measured"] == []


@pytest.mark.slow
def test_cluster_local_as_a_user_runs_it_shows_medians_and_no_ray_notice(nets, tmp_path) -> None:
    """A fresh process without RAY_AUTH_MODE (Ray's default, token authentication, which Ray
    announces on stderr); the token file goes to a home folder of the test's own."""
    root = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    env |= {"HOME": str(tmp_path / "home"), "PYTHONPATH": root}
    out = tmp_path / "results"
    argv = ["sweep", nets["build"], *TINY, "--out", str(out), "--cluster", "local"]
    command = [sys.executable, "-m", "rexbench", *argv]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "Token authentication" not in done.stderr and "Traceback" not in done.stderr
    (record,) = load_records(out)
    assert "median ms" in done.stdout and f"{record.latency.median_ms:.3f}" in done.stdout
    assert (tmp_path / "home" / ".ray" / "auth_token").exists()  # the authentication is on


@pytest.fixture(scope="module")
def connected():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_dry_run_and_ctrl_c_keep_finished_records(connected, nets, tmp_path, capsys, monkeypatch):
    from rexbench.cli import fleet_view

    out = tmp_path / "results"
    specs = [nets["build"], nets["slow"]]
    assert run(["sweep", *specs, *TINY, "--out", str(out), "--cluster", "auto", "--dry-run"]) == 0
    assert f"would measure 2: {', '.join(specs)}" in capsys.readouterr().out

    def interrupt(self, run_, item):
        if item.spec == nets["slow"]:
            raise KeyboardInterrupt

    monkeypatch.setattr(fleet_view.FleetView, "started", interrupt)
    assert run(["sweep", *specs, *TINY, "--out", str(out), "--cluster", "auto"]) == 130
    err = capsys.readouterr().err
    assert "interrupted: remote tasks cancelled; 1 finished record(s) kept" in err, err
    assert [r.model.spec for r in load_records(out)] == [nets["build"]]


@pytest.mark.slow
def test_rank_study_on_the_cluster_equals_one_and_two_processes(connected, capsys) -> None:
    study = [
        "rank",
        "study",
        "--networks",
        "6",
        "--ratios",
        "0.25,1.0",
        "--blocks",
        "a,d",
        "--activations",
        "relu,none",
        "--d-out",
        "8",
        "16",
        "--json",
    ]

    def numbers(*extra: str) -> dict:
        assert run([*study, *extra]) == 0
        data = json.loads(capsys.readouterr().out)
        for key in ("wall_time_s", "workers", "cluster"):
            data.pop(key)
        return data

    one = numbers()
    assert numbers("--cluster", "auto") == one
    assert numbers("--workers", "2") == one
