"""The pipe pair between the parent and one worker process: JSON objects, one per line.

The worker's stdout is not used: ONNX Runtime, OpenVINO and PyTorch may print there. The parent
creates two pipes and hands the worker one end of each (`subprocess.Popen(pass_fds=...)`); each
side holds a `Channel` on its two ends. `receive` waits at most `timeout` seconds (select), so a
worker that hangs is noticed, and returns None when the other side has gone (end of file).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import time
from typing import Any


class Channel:
    """One side of a pipe pair: read JSON lines from `read_fd`, write them to `write_fd`."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd
        self._buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        """Write one message (BrokenPipeError when the other side has gone)."""
        data = memoryview((json.dumps(message) + "\n").encode())
        while data:
            data = data[os.write(self.write_fd, data) :]

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message; None at the end of the pipe; TimeoutError when no whole message came
        within `timeout` seconds (None: wait as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                    raise TimeoutError
            block = os.read(self.read_fd, 1 << 16)
            if not block:
                return None
            self._buffer += block
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
