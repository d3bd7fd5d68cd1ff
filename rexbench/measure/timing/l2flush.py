"""An optional L2 cache flush before every timed call on a GPU (`--flush-l2`, RunConfig.flush_l2).

Between calls the GPU's L2 cache still holds what the previous call left (weights, the input, the
last activations); a model that fits partly in it then runs faster than it would on fresh data.
With the flush, a buffer larger than the L2 is overwritten before each call, as
`triton.testing.do_bench` does with its 256 MB buffer; the flush is queued on the stream before the
start event is recorded, so its own time is not in the sample. Off by default: the paper and timm
time back-to-back calls, warm cache included. torch is imported inside the function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: The size of triton.testing.do_bench's flush buffer; at least twice the L2 is used.
MIN_BYTES = 256 * 2**20


def l2_bytes(device: str) -> int | None:
    """The GPU's L2 cache size in bytes (torch.cuda.get_device_properties), None where unknown."""
    try:
        import torch

        return int(torch.cuda.get_device_properties(device).L2_cache_size) or None
    except Exception:
        return None


def make_flusher(device: str, nbytes: int | None = None) -> Callable[[], None]:
    """A function that overwrites `nbytes` (default: max(MIN_BYTES, 2 x L2)) on `device`; its
    `info` attribute says what a record keeps (bytes, L2 size)."""
    import torch

    l2 = l2_bytes(device)
    size = nbytes or max(MIN_BYTES, 2 * (l2 or 0))
    buffer = torch.empty(size, dtype=torch.int8, device=device)

    def flush() -> None:
        buffer.zero_()

    info: dict[str, Any] = {"bytes": size, "l2_bytes": l2}
    flush.info = info  # type: ignore[attr-defined]
    return flush
