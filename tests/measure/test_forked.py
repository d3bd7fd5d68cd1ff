"""The fork servers (rexbench.measure.run.forkserver, .forked), with real processes: a worker forked
per request in a session of its own, with the server's environment; its end reported as
subprocess reports it; the server kept for a block and gone after it."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import pytest
from _processes import alive

from rexbench.measure.run import forked
from rexbench.measure.run.channel import Channel


def start(servers: forked.Servers, env: dict[str, str]) -> tuple[forked.Forked, Channel]:
    commands, replies = os.pipe(), os.pipe()
    log = tempfile.TemporaryFile()  # noqa: SIM115  (closed with the test's process)
    process = servers.start_worker(env, (), (commands[0], replies[1]), log)
    os.close(commands[0])
    os.close(replies[1])
    return process, Channel(replies[0], commands[1])


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_a_worker_is_forked_in_its_own_session_with_the_servers_environment() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "REXBENCH_TEST_MARK": "a"}
    with forked.kept() as servers:
        first, channel = start(servers, env)
        assert channel.receive(timeout=120) == {"ok": True, "pid": first.pid}
        assert os.getpgid(first.pid) == first.pid and os.getsid(first.pid) == first.pid
        assert first.poll() is None
        server = next(iter(servers.by_env.values()))
        assert environ_of(server.process.pid)["REXBENCH_TEST_MARK"] == "a"

        second, other = start(servers, env)  # the same environment: the same server
        assert len(servers.by_env) == 1 and other.receive(timeout=60)["pid"] == second.pid
        third, last = start(servers, {**env, "REXBENCH_TEST_MARK": "b"})
        assert len(servers.by_env) == 2 and third.pid not in (first.pid, second.pid)

        channel.close()  # the end of its command pipe ends a worker: exit code 0
        assert first.wait(timeout=60) == 0
        os.killpg(second.pid, signal.SIGKILL)
        assert second.wait(timeout=60) == -signal.SIGKILL
        assert third.poll() is None
        with pytest.raises(Exception, match="worker"):  # subprocess.TimeoutExpired
            third.wait(timeout=0.1)
        pids = [s.process.pid for s in servers.by_env.values()]
    assert forked.held() is None
    for pid in pids:  # every server reaped when the block ended
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    last.close()  # its command pipe's end stops the last worker, its server gone or not
    deadline = time.monotonic() + 30
    while alive(third.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(third.pid)


def test_an_inner_block_uses_the_outer_blocks_servers() -> None:
    with forked.kept() as outer:
        with forked.kept() as inner:
            assert inner is outer
        assert forked.held() is outer
    assert forked.held() is None
