"""timm and torchvision for the tests that build real external models (marked `external`).

Where they are not installed, or do not import (a torchvision built for another torch), those
tests skip with the reason. The second environment of .ci/run installs a pair that loads together
and sets REXBENCH_EXTERNAL=1: there a missing or broken library fails the test instead, so the
external tests cannot pass by skipping.
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest

REQUIRED = os.environ.get("REXBENCH_EXTERNAL") == "1"


def require(name: str) -> ModuleType:
    """The library, or a skip naming it (a failure where REXBENCH_EXTERNAL=1)."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        why = f"{name} is not installed (docs/external-models.md says how): {exc}"
    except Exception as exc:  # e.g. "operator torchvision::nms does not exist"
        why = f"{name} is installed but does not import: {type(exc).__name__}: {exc}"
    if REQUIRED:
        pytest.fail(f"REXBENCH_EXTERNAL=1 but {why}")
    pytest.skip(why)
