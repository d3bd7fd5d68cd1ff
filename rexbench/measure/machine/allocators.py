"""The memory allocator a worker process starts under: `--allocator steady|system|jemalloc|tcmalloc`.

A worker process (rexbench.measure.run.workers) gets its allocator from its environment, set before
the interpreter starts, so that every allocation it ever makes follows the policy:

* steady (the default): glibc with no mmap for large blocks and no trimming, through glibc's
  tunables `MALLOC_MMAP_MAX_` and `MALLOC_TRIM_THRESHOLD_` (rexbench.measure.machine.allocator says
  why: eager CPU runs are then reproducible, with no page fault per call);
* system: glibc's default policy, as in a user's own PyTorch process (nothing is set);
* jemalloc / tcmalloc: the library preloaded (`LD_PRELOAD`) when it is installed on this machine;
  otherwise `check_policy` names the Debian package that provides it.

Each worker's thread count is set in its environment too (OMP_NUM_THREADS, MKL_NUM_THREADS), so that
every OpenMP or MKL pool of the process is sized before it starts; the runtimes get theirs through
their own options as before. `worker_environment` returns the variables it set, for the record.
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rexbench.errors import RexbenchError
from rexbench.measure.machine.allocator import ENV_VARS as STEADY_ENV

POLICIES = ("steady", "system", "jemalloc", "tcmalloc")
DEFAULT = "steady"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Library:
    """A preloadable allocator: the shared objects that provide it, the package that installs them."""

    files: tuple[str, ...]
    package: str


LIBRARIES = {
    "jemalloc": Library(("libjemalloc.so.2", "libjemalloc.so"), "libjemalloc2"),
    "tcmalloc": Library(
        ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libtcmalloc_minimal.so"),
        "libtcmalloc-minimal4",
    ),
}


def _library_dirs() -> list[Path]:
    """Where shared libraries usually are: the multiarch folder, lib64, lib, local, this Python's."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    roots = ["/usr/lib", "/lib", "/usr/local/lib"]
    dirs = [f"{root}/{multiarch}" for root in roots if multiarch] + ["/usr/lib64", *roots]
    dirs.append(str(Path(sysconfig.get_config_var("LIBDIR") or "/usr/lib")))
    return [Path(d) for d in dict.fromkeys(dirs)]


def _ldconfig_paths() -> dict[str, str]:
    """{file name: path} of the libraries the dynamic linker's cache knows (`ldconfig -p`)."""
    for ldconfig in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        try:
            text = subprocess.run(
                [ldconfig, "-p"], capture_output=True, text=True, timeout=10, check=True
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        found: dict[str, str] = {}
        for line in text.splitlines():
            name, _, path = line.strip().partition(" => ")
            if path:
                found.setdefault(name.split(" (")[0], path.strip())
        return found
    return {}


def find_library(policy: str) -> str | None:
    """The path of the shared object that provides `policy` (jemalloc, tcmalloc), or None."""
    library = LIBRARIES[policy]
    cached = _ldconfig_paths()
    for name in library.files:
        if name in cached and Path(cached[name]).is_file():
            return cached[name]
        for folder in _library_dirs():
            if (folder / name).is_file():
                return str(folder / name)
    return None


def check_policy(policy: str) -> str | None:
    """Refuse an unknown policy or a library that is not installed (one line, before anything is
    measured); return the library to preload (None for steady and system)."""
    if policy not in POLICIES:
        raise RexbenchError(f"--allocator {policy!r}: choose one of {', '.join(POLICIES)}")
    if policy not in LIBRARIES:
        return None
    path = find_library(policy)
    if path is None:
        library = LIBRARIES[policy]
        raise RexbenchError(
            f"--allocator {policy} needs {library.files[0]}, which is not on this machine; install "
            f"it (Debian/Ubuntu: apt install {library.package}) or use --allocator steady or system"
        )
    return path


def worker_environment(
    policy: str, threads: int | None, base: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """(the environment a worker starts with, the variables set here for it): `base` (default:
    this process's) with the allocator `policy` and, when `threads` is given, the thread variables."""
    env = dict(os.environ if base is None else base)
    set_here: dict[str, str] = {}
    if policy == "steady":
        set_here.update(STEADY_ENV)
    elif policy in LIBRARIES:
        path = check_policy(policy)
        assert path is not None
        preload = env.get("LD_PRELOAD", "")
        set_here["LD_PRELOAD"] = f"{path} {preload}".strip()
    else:
        check_policy(policy)
        for name in STEADY_ENV:  # glibc's own defaults, whatever this process was started with
            env.pop(name, None)
    if threads is not None:
        set_here.update({name: str(threads) for name in THREAD_VARS})
    env.update(set_here)
    return env, set_here
