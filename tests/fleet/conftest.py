"""Ray for the fleet tests: no usage statistics, no token file, every process on 127.0.0.1.

Set before the first `import ray` (Ray reads them when imported, and its processes inherit them):
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes Ray use the loopback address, as it does on a laptop.
"""

from __future__ import annotations

import os

import pytest
from _fleet import NETS

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(scope="module")
def nets(tmp_path_factory) -> dict[str, str]:
    """Absolute `py:` specs (every node finds the file at the same path): build, slow, broken."""
    path = tmp_path_factory.mktemp("nets") / "nets.py"
    path.write_text(NETS)
    return {name: f"py:{path}:{name}" for name in ("build", "slow", "broken")}
