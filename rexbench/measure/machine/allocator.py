"""A steady memory allocator for the timed loop: no page faults per call, whatever the process did before.

What was found. An eager CPU forward allocates and frees tens of megabytes of activations per call.
With glibc's default malloc, much of that memory goes back to the kernel when it is freed (trimmed
from the top of the heap, or unmapped when it was mmapped) and is faulted back in, page by page
(zero-filled), on the next call. Counted with `getrusage` (minor faults, a noise-free count) on a
ReXNet-1.0-sized model at 224x224, batch 1, on this project's 2-core machine: 3,200-7,200 minor
faults per call, about 6-12 ms of a 19 ms forward at one thread (CPU time: 25-32 ms with the
faults, 19 ms without). How many depends on glibc's dynamic mmap and trim thresholds, which depend on
everything the process allocated and freed before: imports, the fingerprint's subprocesses, counting,
the copy that `prepare` makes, the anchor's allocations between the model's chunks. Two processes
timing the same model therefore measure different latencies - the same script, run twice, saw 5,900
and 3,200 faults per call - and `rexbench profile` and another benchmark's loop disagree by 10-30%.

The fix. Before the first model is built (`profile_models` on CPU; the rounds apply it again before
the warm-up), `steady_allocator` fixes glibc's policy with `mallopt`: no mmap for
large blocks (M_MMAP_MAX = 0) and no trimming (M_TRIM_THRESHOLD at its maximum). Freed activations
stay in the process and are reused on the next call, so after the warm-up a call takes no page
fault at all, in every process alike; the time measured is the model's arithmetic and memory
traffic, not the kernel's page zeroing. The policy stays in force for the rest of the process (a
profiling process exists to measure), and what was applied is stored in each record
(`env["allocator"]`). Memory use is unchanged in peak (freed memory is kept, not grown).

With no memory going back to the kernel, where a call's buffers land depends on the holes that
earlier work left in the heap: `rexbench.measure.run.profile` orders its work to leave few, and
`heap_state` reads them for the record.

A minimal loop in another process gets the same policy from the environment, before it starts:
`MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large>` (glibc's documented tunables; `ENV_VARS`);
benchmarks/cli_overhead.py compares the CLI with such a loop and with one under the default policy.
Elsewhere (macOS, musl, Windows) nothing is changed and the record says why.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform
from typing import Any

# mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # bytes: the largest value mallopt takes; never trim
ENV_VARS = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}


def _libc() -> Any | None:
    """glibc's handle, or None where the C library is not glibc."""
    if platform.system() != "Linux":
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except (OSError, AttributeError):
        return None
    return libc


@functools.lru_cache(maxsize=1)
def steady_allocator() -> dict[str, Any]:
    """Apply the no-mmap, no-trim policy once per process; return what a record stores about it."""
    libc = _libc()
    if libc is None:
        return {"policy": "default", "reason": f"not glibc ({platform.system()}): left as it is"}
    ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    version = libc.gnu_get_libc_version().decode()
    if not ok:
        return {"policy": "default", "reason": f"mallopt refused (glibc {version})"}
    return {
        "policy": "steady",
        "library": f"glibc {version}",
        "mmap_max": 0,
        "trim_threshold": TRIM_THRESHOLD,
    }


class _MallInfo2(ctypes.Structure):
    """glibc's struct mallinfo2 (malloc.h, glibc 2.33+): every field a size_t."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def heap_state() -> dict[str, int] | None:
    """The malloc heap now (glibc's mallinfo2): bytes in use, free bytes in holes between used
    blocks, free bytes at the top of the main heap, free chunks; None where there is no mallinfo2.

    The holes are where a model's buffers land when it is timed in a process that freed memory
    before (rexbench.measure.run.profile orders its work to leave few); a record keeps this reading
    from right before the warm-up.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {
        "in_use_bytes": info.uordblks,
        "holes_bytes": info.fordblks - info.keepcost,
        "top_bytes": info.keepcost,
        "free_chunks": info.ordblks,
    }


def minor_faults() -> int | None:
    """Minor page faults of this process so far (getrusage); None where unavailable."""
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
    except (ImportError, OSError):
        return None
