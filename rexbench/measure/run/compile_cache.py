"""torch.compile's on-disk cache, left broken by a compilation that was killed.

Inductor links each compiled C++ kernel straight into its cache folder (`<hash>.main.so`). A process
killed while the linker writes (a worker stopped at its timeout or budget, Ctrl-C during a
compile) leaves that file empty, and every later compilation of the same kernel, in any process,
then fails with "ImportError: ...main.so: file too short" until the file is removed (a known
PyTorch problem: inductor does not write the library under another name and rename it). rexbench
stops workers that way, so it removes such an entry when a preparation meets it and says so; the
next run compiles the kernel afresh.
"""

from __future__ import annotations

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
    for path in removed:
        path.unlink()
        build = path.with_name(path.name.removesuffix(".so") + "_CxxBuild")
        shutil.rmtree(build, ignore_errors=True)
    also = f" and {len(removed) - 1} more like it" if len(removed) > 1 else ""
    return (
        f"torch.compile's cache held an empty library left by a compilation that was killed "
        f"({library}{also}); removed: run the command again"
    )


def _empty(path: Path) -> bool:
    return path.is_file() and path.stat().st_size == 0
