"""The parent's side of the fork servers (rexbench.measure.run.forkserver): one per worker
environment, kept for a whole profile or sweep, each forking the workers of that environment.

`kept()` holds the servers for a block (a sweep holds them across its models; a profile, when no
sweep does, for its own); `start_worker` starts a worker through the server of its environment and
returns a `Forked`, which answers like the `subprocess.Popen` of a worker (pid, poll, wait,
returncode). The server forks requests in order, once its preloading is done; the parent does not
wait for that: a worker's pid is read when it is first asked for.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from rexbench.errors import RexbenchError
from rexbench.measure.run.compile_cache import remove_left_since

#: what a server runs (`python -c`): rexbench.measure.run.forkserver's main, with this process's
#: rexbench first on the path
BOOT = (
    "import sys; sys.path[0] = sys.argv[1]; "
    "from rexbench.measure.run.forkserver import main; raise SystemExit(main(sys.argv[2:]))"
)
INDUCTOR = "inductor"  # a preload that sets torch.compile's inductor up before forking


class ForkServer:
    """One server process, started with `env`; its messages read as they come."""

    def __init__(self, env: Mapping[str, str], preload: Sequence[str]) -> None:
        ours, theirs = socket.socketpair()
        self.socket = ours
        # its output, quoted when it ends before it forks; closed by close()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.born = time.time()  # its kernel libraries in torch.compile's cache are newer
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", BOOT, package_root(), str(theirs.fileno()), *preload],
                pass_fds=(theirs.fileno(),),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=self.log,
                start_new_session=True,  # Ctrl-C reaches the parent only, which stops it
            )
        except OSError as exc:
            ours.close()
            self.log.close()
            raise RexbenchError(f"could not start a worker process: {exc}") from exc
        finally:
            theirs.close()
        self.asked = 0  # fork requests sent
        self.pids: list[int] = []  # the pid of each request, in order
        self.exits: dict[int, int] = {}  # pid -> returncode, of the children that ended
        self.gone = False  # its socket ended: no more answers
        self._buffer = b""

    def fork(self, commands: int, replies: int, log: IO[bytes]) -> int:
        """Ask for a worker on these descriptors; returns the request's number (its pid comes
        later: `pid`)."""
        try:
            socket.send_fds(self.socket, [b"fork"], [commands, replies, log.fileno()])
        except OSError as exc:
            raise RexbenchError(f"could not start a worker process: {exc}") from exc
        self.asked += 1
        return self.asked - 1

    def pid(self, request: int, timeout: float | None = None) -> int | None:
        """The pid of request number `request`, waiting for it at most `timeout` seconds (None: as
        long as it takes); None when it did not come."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self.pids) <= request and self.read(deadline):
            pass
        return self.pids[request] if len(self.pids) > request else None

    def returncode(self, pid: int, timeout: float | None = 0.0) -> int | None:
        """How child `pid` ended, waiting at most `timeout` seconds (None: as long as it takes);
        None while it runs."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid not in self.exits and self.read(deadline):
            pass
        if pid not in self.exits and self.gone and not _exists(pid):
            self.exits[pid] = -signal.SIGKILL  # the server was killed first: not known here
        return self.exits.get(pid)

    def read(self, deadline: float | None) -> bool:
        """Read one message; False when none came by `deadline` or the server is gone."""
        while b"\n" not in self._buffer:
            if self.gone:
                return False
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.socket], [], [], left)[0]:
                return False
            block = self.socket.recv(1 << 12)
            self.gone = not block
            self._buffer += block
        line, _, self._buffer = self._buffer.partition(b"\n")
        words = line.decode().split()
        if words[0] == "pid":
            self.pids.append(int(words[1]))
        elif words[0] == "exit":
            self.exits[int(words[1])] = int(words[2])
        return True

    def last_line(self) -> str:
        """The last line the server wrote (why it ended, when it did)."""
        with contextlib.suppress(OSError, ValueError):
            self.log.seek(0)
            lines = self.log.read()[-4000:].decode(errors="replace").strip().splitlines()
            return lines[-1] if lines else ""
        return ""

    def close(self) -> None:
        """End the server (its socket's end) and reap it; killed when it does not go at once
        (still preloading), with the empty kernel libraries a compilation killed meanwhile left in
        torch.compile's cache removed (rexbench.measure.run.compile_cache)."""
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()
        try:
            self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            with contextlib.suppress(OSError):
                remove_left_since(self.born - 1.0)  # file times may be coarser
        self.log.close()


class Forked:
    """A worker forked by a server, answering like its `subprocess.Popen` would."""

    def __init__(self, server: ForkServer, request: int) -> None:
        self.server, self.request = server, request
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        pid = self.server.pid(self.request)
        if pid is None:
            why = self.server.last_line()
            raise RexbenchError(
                f"a worker process could not be started: its fork server ended{f': {why}' if why else ''}"
            )
        return pid

    def poll(self) -> int | None:
        if self.returncode is None:
            pid = self.server.pid(self.request, timeout=0.0)
            self.returncode = None if pid is None else self.server.returncode(pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.server.returncode(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired("worker", timeout or 0.0)
        return self.returncode


class Servers:
    """The fork servers of one block, by environment."""

    def __init__(self) -> None:
        self.by_env: dict[tuple[tuple[str, str], ...], ForkServer] = {}

    def start_worker(
        self, env: Mapping[str, str], preload: Sequence[str], fds: tuple[int, int], log: IO[bytes]
    ) -> Forked:
        key = tuple(sorted(env.items()))
        if key not in self.by_env:
            self.by_env[key] = ForkServer(env, preload)
        server = self.by_env[key]
        return Forked(server, server.fork(*fds, log))

    def close(self) -> None:
        for server in self.by_env.values():
            server.close()
        self.by_env.clear()


_held: Servers | None = None


@contextlib.contextmanager
def kept() -> Iterator[Servers]:
    """The fork servers for this block: the enclosing block's when there is one (a sweep's, around
    its profiles), else new ones, ended when the block ends."""
    global _held
    if _held is not None:
        yield _held
        return
    _held = Servers()
    try:
        yield _held
    finally:
        servers, _held = _held, None
        servers.close()


def held() -> Servers | None:
    """The servers of the block this runs in (None: no block holds any)."""
    return _held


def package_root() -> str:
    """The folder this process imports rexbench from."""
    import rexbench

    return str(Path(rexbench.__file__).resolve().parent.parent)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
