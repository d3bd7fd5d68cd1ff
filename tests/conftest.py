"""Shared fixtures."""

import gc

import pytest


def _collect_and_freeze() -> None:
    gc.collect()
    gc.freeze()


def pytest_collection_finish(session):
    """Freeze what collection left alive (torch, pytest, the test modules: ~290,000 objects), so
    that a garbage collection scans only what the tests create since. Every profile collects
    garbage before its memory window (rexbench.measure.timing.devices.release_free_memory): in
    this process a full scan took 0.13-0.26 s each time."""
    _collect_and_freeze()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """After a module's last test and its fixtures: collect what it left and freeze the rest
    (modules it imported: onnx, OpenVINO, torch.compile's), a scan of that module's objects only."""
    if getattr(nextitem, "module", None) is not getattr(item, "module", None):
        _collect_and_freeze()


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for the module: on a busy 2-core machine two spinning threads make tiny
    forwards many times slower. Modules opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


QUIET_COUNTERS = {
    "psi_some_us": 0,
    "psi_full_us": 0,
    "steal_ticks": 0,
    "total_ticks": 0,
    "wait_ns": 0,
    "faults": 0,
    "threads": 1,
}


@pytest.fixture(autouse=True)
def quiet_kernel(request, monkeypatch):
    """Every test sees a quiet machine (contention counters that never move), so that a test's
    outcome does not depend on what else the machine runs; tests of the counters themselves opt out
    with `@pytest.mark.real_counters` (or pass their own reader)."""
    if request.node.get_closest_marker("real_counters"):
        return
    from rexbench.measure.machine import contention

    monkeypatch.setattr(contention, "read_counters", lambda *a, **k: dict(QUIET_COUNTERS))
