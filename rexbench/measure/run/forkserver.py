"""A fork server: a process that has done a worker's imports once and forks a worker per request.

A worker started as a new interpreter spends, per model and configuration, about 1.3 s importing
PyTorch and, on its first torch.compile, seconds more importing inductor and finding the CPU's
vector ISA (docs/workers.md, "What it costs"). This process is started once per worker
environment (threads, allocator: the variables a runtime reads when it loads) with that
environment, does that work once, and then forks each worker: a child whose heap holds what a new
interpreter's would after the same imports, and nothing of another model's, without paying the
imports again (multiprocessing's forkserver is the model; it cannot be used here, as it has one
environment per parent process).

It runs no tensor operation and starts no thread pool before it forks (OpenMP's and the runtimes'
pools do not survive a fork): ONNX Runtime and OpenVINO, whose imports start threads, are imported
by each worker, in a fraction of a second.

Protocol, on the Unix socket it is given (rexbench.measure.run.forked is the other side):
- the parent sends b"fork" with three descriptors (the worker's command pipe, its reply pipe, its
  log); the server forks, and the child runs rexbench.measure.run.worker's main in a session of
  its own with its stdout and stderr on the log; the server answers b"pid N\\n";
- when a child ends, the server reaps it and sends b"exit N CODE\\n" (CODE as subprocess's
  returncode: negative for the signal that ended it);
- at the end of the socket (the parent is gone or done) the server exits; its children see their
  own command pipes end.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Sequence

from rexbench.measure.run.forked import INDUCTOR


def preload(names: Sequence[str]) -> None:
    """The imports every worker does, and with INDUCTOR torch.compile's inductor: its modules and
    the vector ISA it compiles for (it builds and runs test programs to find it).

    Not a first compilation, although it would save a compiled worker about 1 s more: the child's
    heap then had 14-20 MB of free holes before its warm-up instead of the 4.5-7.4 MB of a new
    interpreter (glibc's mallinfo2, compile_cl on rexnet_x1.0, two runs each), and holes among
    the weights cost a compiled model 8-12% here (docs/gate.md, "What cost the model time")."""
    import torch  # noqa: F401

    import rexbench.measure.run.profile  # noqa: F401  (what a worker's setup imports)
    import rexbench.measure.run.worker  # noqa: F401

    if INDUCTOR in names:
        import torch._inductor.compile_fx  # noqa: F401
        from torch._inductor import cpu_vec_isa

        cpu_vec_isa.pick_vec_isa()


def serve(server: socket.socket) -> None:
    """Fork a worker per request until the socket ends; report every child's end."""
    woken_r, woken_w = os.pipe()
    os.set_blocking(woken_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(woken_w, warn_on_full_buffer=False)
    while True:
        ready = select.select([server, woken_r], [], [])[0]
        if woken_r in ready:
            os.read(woken_r, 1024)
            _report_ended(server)
        if server in ready:
            message, fds, _, _ = socket.recv_fds(server, 64, 3)
            if not message:
                return
            in_session_r, in_session_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(in_session_r)
                _child(server, (woken_r, woken_w, in_session_w), fds)
            for fd in (*fds, in_session_w):
                os.close(fd)
            os.read(in_session_r, 1)  # its pid names its process group once it has one
            os.close(in_session_r)
            server.sendall(f"pid {pid}\n".encode())


def _report_ended(server: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        server.sendall(f"exit {pid} {os.waitstatus_to_exitcode(status)}\n".encode())


def _child(server: socket.socket, ours: tuple[int, int, int], fds: list[int]) -> None:
    """The forked worker: its own session (the server is told by the end of `ours`' last pipe,
    so that the parent can kill the worker's process group as soon as it has its pid), its log
    as stdout and stderr, the server's descriptors closed and its signal handling undone;
    rexbench.measure.run.worker's main, then exit without the server's clean-up."""
    code = 1
    try:
        os.setsid()  # Ctrl-C reaches the parent only, which stops it
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        server.close()
        for fd in ours:
            os.close(fd)
        commands, replies, log = fds
        null = os.open(os.devnull, os.O_RDONLY)
        for source, target in ((null, 0), (log, 1), (log, 2)):
            os.dup2(source, target)
        for fd in (null, log):
            os.close(fd)
        from rexbench.measure.run.worker import main

        code = main([str(commands), str(replies)])
    except BaseException:  # said in its log, which the parent quotes
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def main(argv: Sequence[str]) -> int:
    """`python -c BOOT ROOT SOCKET_FD [PRELOAD ...]`: preload, then serve (the parent's requests
    wait in the socket meanwhile)."""
    server = socket.socket(fileno=int(argv[0]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    preload(argv[1:])
    serve(server)
    return 0
