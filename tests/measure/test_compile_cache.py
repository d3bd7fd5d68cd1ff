"""A torch.compile cache entry that a killed compilation left empty: removed when a preparation
meets it, with one line that says so; the next run compiles afresh (a real inductor cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rexbench.measure.run.compile_cache import (
    inductor_cache,
    remove_left_since,
    remove_truncated,
    truncated_library,
)

NET = """\
import torch.nn as nn


def build():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
"""


def import_error(library: Path) -> Exception:
    """How inductor's failure reaches rexbench: an ImportError wrapped in another error."""
    try:
        try:
            raise ImportError(f"{library}: file too short")
        except ImportError as inner:
            raise RuntimeError("InductorError: ImportError") from inner
    except RuntimeError as outer:
        return outer


def test_a_killed_workers_empty_libraries_are_removed_and_nothing_else(tmp_path: Path) -> None:
    fresh, old, whole = (tmp_path / d / f"c{d}.main.so" for d in ("ab", "cd", "ef"))
    for library in (fresh, old, whole):
        library.parent.mkdir()
        library.touch()
    whole.write_bytes(b"\x7fELF")  # a library that was linked whole
    build = fresh.with_name("cab.main_CxxBuild")
    build.mkdir()
    os.utime(old, (1_000_000.0, 1_000_000.0))  # empty since long before the worker started
    assert remove_left_since(2_000_000.0, tmp_path) == [fresh]
    assert not fresh.exists() and not build.exists() and old.exists() and whole.exists()
    assert remove_left_since(2_000_000.0, tmp_path / "none") == []


def test_inductors_cache_folder_is_found_as_inductor_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    assert inductor_cache() == tmp_path
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    assert inductor_cache() == Path(default_cache_dir())


def test_an_empty_library_and_its_build_folder_are_removed_once(tmp_path: Path) -> None:
    library = tmp_path / "jk" / "cjkpq.main.so"
    build = tmp_path / "jk" / "cjkpq.main_CxxBuild"
    build.mkdir(parents=True)
    library.touch()
    other = tmp_path / "sx" / "csxvq.main.so"  # a second one the same killed run left
    other.parent.mkdir()
    other.touch()
    source = tmp_path / "jk" / "cjkpq.main.cpp"
    source.write_text("// kernel")
    exc = import_error(library)
    assert truncated_library(exc) == library
    said = remove_truncated(exc)
    assert said is not None and f"{library} and 1 more like it" in said
    assert said.endswith("removed: run the command again")
    assert not library.exists() and not build.exists() and not other.exists() and source.exists()
    assert remove_truncated(exc) is None  # gone: nothing more to say


def test_a_library_that_is_not_empty_or_another_error_is_left_alone(tmp_path: Path) -> None:
    library = tmp_path / "ab" / "whole.main.so"
    library.parent.mkdir()
    library.write_bytes(b"\x7fELF")
    assert remove_truncated(import_error(library)) is None and library.exists()
    assert remove_truncated(RuntimeError("InductorError: CppCompileError")) is None


def profile(tmp_path: Path, cache: Path) -> subprocess.CompletedProcess:
    args = ["profile", "py:net.py:build", "--config", "compile", "--resolution", "32"]
    args += ["--runs", "5", "--warmup", "1", "--threads", "1", "--out", "runs", "--json"]
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return subprocess.run(
        [sys.executable, "-m", "rexbench", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_a_profile_that_meets_an_emptied_cache_entry_says_so_and_the_next_one_runs(tmp_path):
    (tmp_path / "net.py").write_text(NET)
    cache = tmp_path / "inductor"
    assert profile(tmp_path, cache).returncode == 0
    libraries = [p for p in cache.glob("*/*.main.so") if p.stat().st_size > 0]
    assert libraries
    for library in libraries:  # as compilations killed while linking leave them
        library.write_bytes(b"")
    broken = profile(tmp_path, cache)
    assert broken.returncode == 1, broken.stderr
    failed = [ln for ln in broken.stderr.splitlines() if "torch.compile's cache" in ln]
    assert len(failed) == 1 and "removed: run the command again" in failed[0], broken.stderr
    assert not [p for p in cache.glob("*/*.main.so") if p.stat().st_size == 0]
    assert "Traceback" not in broken.stderr
    again = profile(tmp_path, cache)
    assert again.returncode == 0, again.stderr
    (row,) = json.loads(again.stdout)["rows"]
    assert row["median_ms"] > 0
