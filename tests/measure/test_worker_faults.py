"""The parts of the worker processes that need no worker: the pipe protocol (a real pipe), how a
worker's end is described, what the parent reads in /proc and the cgroup about it (synthetic
files), and the environment each allocator policy starts a worker with."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from rexbench.errors import RexbenchError
from rexbench.measure.machine import allocators, processes
from rexbench.measure.run.channel import Channel
from rexbench.measure.run.faults import Fault, ended, innermost_frame, timed_out
from rexbench.measure.run.workers import Isolation


def test_a_channel_carries_json_lines_and_says_when_the_other_side_is_gone() -> None:
    a_read, b_write = os.pipe()
    b_read, a_write = os.pipe()
    a, b = Channel(a_read, a_write), Channel(b_read, b_write)
    big = list(range(50_000))  # more than one pipe buffer
    a.send({"op": "chunk", "n": 3})
    assert b.receive(timeout=5) == {"op": "chunk", "n": 3}
    with pytest.raises(TimeoutError):
        a.receive(timeout=0.05)  # nothing sent yet
    os.write(b_write, b'{"samples": [1, ')  # half a message is not a message
    with pytest.raises(TimeoutError):
        a.receive(timeout=0.05)
    os.write(b_write, b'2]}\n{"next": true}\n')
    assert a.receive(timeout=5) == {"samples": [1, 2]}
    assert a.receive(timeout=5) == {"next": True}
    pid = os.fork()
    if pid == 0:  # the other side sends a big message and goes away
        b.send({"samples": big})
        os._exit(0)
    b.close()
    assert a.receive(timeout=30) == {"samples": big}
    assert a.receive(timeout=5) is None
    assert os.waitpid(pid, 0)[1] == 0
    with pytest.raises(BrokenPipeError):
        a.send({"op": "chunk", "n": 1})
    a.close()


FAULTHANDLER_LOG = """\
Fatal Python error: Segmentation fault

Current thread 0x00007f (most recent call first):
  File "/usr/lib/python3.11/ctypes/__init__.py", line 519 in string_at
  File "/home/user/project/nets.py", line 27 in forward
  File "/usr/lib/python3/site-packages/torch/nn/modules/module.py", line 1775 in _call_impl
"""


def test_a_crash_names_its_signal_and_the_innermost_frame_outside_python_itself(monkeypatch):
    import sysconfig

    paths = {**sysconfig.get_paths(), "stdlib": "/usr/lib/python3.11"}
    monkeypatch.setattr(sysconfig, "get_paths", lambda: paths)
    assert innermost_frame(FAULTHANDLER_LOG) == "in forward (nets.py:27)"
    assert innermost_frame("no stack here") is None
    assert ended(-signal.SIGSEGV, FAULTHANDLER_LOG) == Fault(
        "crashed", "crashed (SIGSEGV: segmentation fault) in forward (nets.py:27)"
    )
    assert ended(-signal.SIGABRT) == Fault("crashed", "crashed (SIGABRT: aborted)")
    assert ended(-signal.SIGUSR1) == Fault("crashed", "crashed (SIGUSR1)")


def test_a_kill_says_out_of_memory_as_far_as_the_cgroup_tells() -> None:
    assert ended(-signal.SIGKILL, oom_grew=True) == Fault(
        "killed", "was killed by the kernel's out-of-memory killer (SIGKILL)"
    )
    assert ended(-signal.SIGKILL, oom_grew=None).reason == "was killed (SIGKILL; out of memory?)"
    assert ended(-signal.SIGKILL, oom_grew=False).reason == "was killed (SIGKILL)"


def test_an_exit_quotes_the_last_line_and_a_hang_the_timeout() -> None:
    log = "Traceback (most recent call last):\n  ...\nImportError: no module named onnx\n\n"
    assert ended(1, log) == Fault(
        "exited", "exited with code 1 before it finished: ImportError: no module named onnx"
    )
    assert ended(0).reason == "exited with code 0 before it finished"
    assert timed_out(2.5) == Fault("timeout", "ran past --timeout 2.5 s and was stopped (hung?)")


def test_a_workers_page_faults_and_the_oom_kill_count_are_read_from_proc_and_cgroup(tmp_path):
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "42").mkdir(parents=True)
    (proc / "42" / "stat").write_text("42 (python -c x) S 1 42 42 0 -1 4194560 1234 0 5 0 7 8")
    assert processes.minor_faults_of(42, proc) == 1234
    assert processes.minor_faults_of(43, proc) is None
    assert processes.parse_minflt("garbage") is None
    (proc / "self").mkdir()
    (proc / "self" / "cgroup").write_text("4:memory:/jobs/one\n0::/\n")
    assert processes.oom_kills(proc, cgroup) is None  # no file: unknown
    (cgroup / "memory" / "jobs" / "one").mkdir(parents=True)
    oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
    (cgroup / "memory" / "jobs" / "one" / "memory.oom_control").write_text(oom_control)
    assert processes.oom_kills(proc, cgroup) == 3  # cgroup v1
    (proc / "self" / "cgroup").write_text("0::/user.slice/job\n")
    (cgroup / "user.slice" / "job").mkdir(parents=True)
    events = "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n"
    (cgroup / "user.slice" / "job" / "memory.events").write_text(events)
    assert processes.oom_kills(proc, cgroup) == 1  # cgroup v2


def test_each_policy_starts_a_worker_with_its_environment(monkeypatch) -> None:
    base = {"PATH": "/bin", "LD_PRELOAD": "libmine.so", **allocators.STEADY_ENV}
    env, set_here = allocators.worker_environment("steady", 2, base)
    assert set_here == {**allocators.STEADY_ENV, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    assert env == {**base, **set_here}
    env, set_here = allocators.worker_environment("system", None, base)
    assert set_here == {} and env == {"PATH": "/bin", "LD_PRELOAD": "libmine.so"}
    found = allocators.Library(("libc.so.6",), "libc6")  # a library every glibc machine has
    monkeypatch.setitem(allocators.LIBRARIES, "jemalloc", found)
    path = allocators.find_library("jemalloc")
    assert path is not None and Path(path).is_file()
    env, set_here = allocators.worker_environment("jemalloc", 1, base)
    assert set_here["LD_PRELOAD"] == f"{path} libmine.so" and env["OMP_NUM_THREADS"] == "1"


def test_isolation_refuses_what_cannot_be_in_one_line() -> None:
    assert Isolation().checked(in_process=True) == Isolation(in_process=True)
    with pytest.raises(RexbenchError, match="choose one of steady, system, jemalloc, tcmalloc"):
        Isolation(allocator="mimalloc").checked()
    with pytest.raises(RexbenchError, match="drop --in-process"):
        Isolation(in_process=True, allocator="system").checked()
    with pytest.raises(RexbenchError, match=r"--timeout -1: give a number of seconds > 0"):
        Isolation(timeout=-1).checked()


def test_wait_idle_waits_while_a_thread_runs_and_at_most_its_limit(tmp_path: Path) -> None:
    tasks = tmp_path / "task"
    for tid, state in ((11, "S"), (12, "R"), (13, "R")):
        (tasks / str(tid)).mkdir(parents=True)
        (tasks / str(tid) / "stat").write_text(f"{tid} (pt_main thread) {state} 1 2 3")
    assert processes.running_threads(tasks) == 2
    assert processes.running_threads(tasks, exclude=12) == 1
    assert processes.running_threads(tmp_path / "gone") is None
    waited, idle = processes.wait_idle(tasks, limit_s=0.05)
    assert not idle and waited >= 0.05  # still running when the limit came
    for tid in (12, 13):
        (tasks / str(tid) / "stat").write_text(f"{tid} (pt_main thread) S 1 2 3")
    assert processes.wait_idle(tasks, limit_s=60)[1]
    assert processes.wait_idle(tmp_path / "gone")[1]  # nothing to read: nothing to wait for
