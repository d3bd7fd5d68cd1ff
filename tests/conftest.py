"""Shared fixtures."""

import pytest


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for the module: on a busy 2-core machine two spinning threads make tiny
    forwards many times slower. Modules opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


QUIET_COUNTERS = {"psi_some_us": 0, "psi_full_us": 0, "steal_ticks": 0, "total_ticks": 0,
                  "wait_ns": 0, "faults": 0, "threads": 1}  # fmt: skip


@pytest.fixture(autouse=True)
def quiet_kernel(request, monkeypatch):
    """Every test sees a quiet machine (contention counters that never move), so that a test's
    outcome does not depend on what else the machine runs; tests of the counters themselves opt out
    with `@pytest.mark.real_counters` (or pass their own reader)."""
    if request.node.get_closest_marker("real_counters"):
        return
    from rexbench.measure.machine import contention

    monkeypatch.setattr(contention, "read_counters", lambda *a, **k: dict(QUIET_COUNTERS))
