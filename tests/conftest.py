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
