"""exact_params: parameters on the meta device; a missing builder is None, a broken one raises."""

from __future__ import annotations

import sys

import pytest

from rexbench.models.factory import exact_params
from rexbench.registry import ModelEntry


def test_real_errors_in_a_builder_are_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "rexbench_fake_zoo.py").write_text(
        "import rexbench_dependency_that_does_not_exist\n", encoding="utf-8"
    )
    (tmp_path / "rexbench_fake_zoo2.py").write_text(
        "def build(num_classes):\n    raise RuntimeError('broken builder')\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="rexbench_dependency_that_does_not_exist"):
        exact_params(ModelEntry("x", "X", "rexbench_fake_zoo:build"))
    with pytest.raises(RuntimeError, match="broken builder"):
        exact_params(ModelEntry("x", "X", "rexbench_fake_zoo2:build"))
    for name in ("rexbench_fake_zoo", "rexbench_fake_zoo2"):
        sys.modules.pop(name, None)
