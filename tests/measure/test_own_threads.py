"""rexbench.measure.machine.own_threads: the wait on synthetic /proc contents; with the real
thread pools: ONNX Runtime's workers stop spinning when a run returns, and the wait outlasts
PyTorch's spinning OpenMP worker."""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch

from rexbench.measure.machine.own_threads import Settle


def tasks_dir(folder, states: dict[str, str]):
    """A synthetic /proc/self/task: one folder per thread id with its stat line."""
    for tid, state in states.items():
        (folder / tid).mkdir(parents=True)
        (folder / tid / "stat").write_text(f"{tid} (pool) {state} 1 1 1 0 -1\n")
    return folder


def test_settle_returns_at_once_when_idle_and_gives_up_at_the_limit(tmp_path):
    idle = Settle(tasks=tasks_dir(tmp_path / "idle", {"1": "S", "2": "S"}))
    idle()
    assert idle.info["chunks"] == 1 and idle.info["not_settled"] == 0
    spinning = Settle(limit_s=0.02, tasks=tasks_dir(tmp_path / "busy", {"1": "R"}))
    spinning()
    spinning()
    info = spinning.info
    assert info["chunks"] == 2 and info["not_settled"] == 2 and info["limit_s"] == 0.02
    assert info["max_s"] >= 0.02 and info["waited_s"] >= 0.04  # it waited for the limit each time
    nowhere = Settle(tasks=tmp_path / "missing")  # no /proc (macOS): no wait
    nowhere()
    assert nowhere.info["chunks"] == 1 and nowhere.info["not_settled"] == 0


def others_cpu_ns() -> int:
    """CPU time of this process's threads other than the caller (ns)."""
    me, total = str(threading.get_native_id()), 0
    for tid in os.listdir("/proc/self/task"):
        if tid != me:
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as fh:
                    total += int(fh.read().split()[0])
            except OSError:
                continue
    return total


def cpu_after(call, seconds: float = 0.2) -> float:
    """ms of CPU time our other threads use in the `seconds` after `call()` returns."""
    call()
    before = others_cpu_ns()
    time.sleep(seconds)
    return (others_cpu_ns() - before) / 1e6


@pytest.fixture
def two_threads():
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(saved)


def test_onnx_runtime_workers_stop_spinning_when_a_run_returns(two_threads):
    """ONNX Runtime's default session: its intra-op worker spins on after each run (36-44 ms of CPU
    time on this project's machine); the session rexbench builds leaves no thread of ours busy."""
    import onnxruntime as ort

    from rexbench.measure.backends.onnx_export import export_onnx
    from rexbench.measure.backends.onnxruntime import FORCE_SPINNING_STOP, OnnxRuntimeBackend
    from rexbench.models.factory import create_model
    from rexbench.spec import parse

    model = create_model(parse("mobilenet_v3_small")).eval()
    x = torch.randn(1, 3, 64, 64)
    blob, _ = export_onnx(model, x)
    ours, info = OnnxRuntimeBackend().session(blob, "cpu", 2)
    assert info[FORCE_SPINNING_STOP] == "1"
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    default = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
    feed = {"input": x.numpy()}
    for session in (default, ours):
        for _ in range(3):  # warm
            session.run(None, feed)
    spun = cpu_after(lambda: default.run(None, feed))
    time.sleep(0.3)  # the default session's worker is done spinning
    assert spun > 2  # ms
    # side by side in one process: other threads a test session left behind add a little to both
    assert cpu_after(lambda: ours.run(None, feed)) < spun / 4


def test_settle_outlasts_pytorchs_spinning_openmp_worker(two_threads):
    """After a 2-thread PyTorch operation its OpenMP worker spins on (7-11 ms of CPU time here);
    once `Settle` returns, our threads use no more CPU than they do at rest. At rest is measured
    in the same process just before: threads other tests left behind (Ray's, a runtime's) use
    up to about 1 ms in 0.1 s in a full test session."""
    a, b = torch.ones(4 * 2**20), torch.ones(4 * 2**20)  # 16 MB each: torch uses both threads
    out = torch.empty_like(a)

    def add() -> None:
        torch.add(a, b, out=out)

    def settled() -> None:
        add()
        settle()

    add()
    spun = cpu_after(add, seconds=0.1)
    assert spun > 1  # ms: the worker spun after the call
    time.sleep(0.2)
    at_rest = cpu_after(lambda: None, seconds=0.1)
    settle = Settle(limit_s=1.0)
    after_settle = cpu_after(settled, seconds=0.1)
    assert after_settle < at_rest + 0.5 < spun
    assert settle.info["not_settled"] == 0
