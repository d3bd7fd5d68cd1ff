"""torch.compile's on-disk cache, left broken by a compilation that was killed.

Inductor links each compiled C++ kernel straight into its cache folder (`<hash>.main.so`). A process
killed while the linker writes (a worker stopped at its timeout or budget, Ctrl-C during a
compile) leaves that file empty, and every later compilation of the same kernel, in any process,
then fails with "ImportError: ...main.so: file too short" until the file is removed (a known
PyTorch problem: inductor does not write the library under another name and rename it). rexbench
stops workers that way, so the parent removes the empty libraries written since a worker started
when it kills that worker (`remove_left_since`), and a preparation that still meets one removes it
and says so; the next run compiles the kernel afresh.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_TRUNCATED = re.compile(r"(/\S+\.so): file too short")


def truncated_library(exc: BaseException) -> Path | None:
    """The compiled library that `exc` (or an exception it came from) found empty, or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _TRUNCATED.search(str(current))
        if found:
            return Path(found.group(1))
        current = current.__cause__ or current.__context__
    return None


def remove_truncated(exc: BaseException) -> str | None:
    """Remove the empty library `exc` names, every other empty kernel library of the same cache
    (a killed run can leave several) and inductor's build folders beside them; the sentence that
    says so, or None when `exc` is not about such a library or it is no longer empty."""
    library = truncated_library(exc)
    if library is None or not _empty(library):
        return None
    cache = library.parent.parent  # <cache>/<two letters>/<hash>.main.so
    removed = [library, *(p for p in cache.glob("*/*.main.so") if p != library and _empty(p))]
    _remove(removed)
    also = f" and {len(removed) - 1} more like it" if len(removed) > 1 else ""
    return (
        f"torch.compile's cache held an empty library left by a compilation that was killed "
        f"({library}{also}); removed: run the command again"
    )


def remove_left_since(since: float, cache: Path | None = None) -> list[Path]:
    """Remove the empty kernel libraries of torch.compile's cache (`cache`, else inductor's own
    folder) last written at or after `since` (seconds since the epoch): a worker killed at that
    moment was linking them. Returns what was removed."""
    folder = cache if cache is not None else inductor_cache()
    if folder is None or not folder.is_dir():
        return []
    left = [p for p in folder.glob("*/*.main.so") if _empty(p) and p.stat().st_mtime >= since]
    _remove(left)
    return left


def inductor_cache() -> Path | None:
    """Inductor's cache folder as its own `cache_dir()` finds it (TORCHINDUCTOR_CACHE_DIR, else
    its default under the temporary folder), without creating it; None when torch cannot say."""
    given = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if given:
        return Path(given)
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:
        return None
    return Path(default_cache_dir())


def _remove(libraries: list[Path]) -> None:
    """Each library and inductor's build folder beside it."""
    for path in libraries:
        path.unlink(missing_ok=True)
        build = path.with_name(path.name.removesuffix(".so") + "_CxxBuild")
        shutil.rmtree(build, ignore_errors=True)


def _empty(path: Path) -> bool:
    return path.is_file() and path.stat().st_size == 0
