"""Does the batch fit? Checked before any model is built: the input batch's bytes, and roughly its
activations, against the memory the device has free now (Linux: MemAvailable of /proc/meminfo,
proc(5); CUDA: torch.cuda.mem_get_info). A batch that cannot fit is one line naming both figures and
the largest batch that would, instead of an allocator's error (or the kernel's out-of-memory killer)
after the model was built. A model whose input shape is only known once it is built (`py:`, `timm:`
and `torchvision:` without --input-shape or --resolution) is checked at its first allocation."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    from rexbench.measure.config import RunConfig
    from rexbench.spec import ModelSpec

#: Peak memory of one eager forward beyond the weights, in multiples of its input batch's bytes:
#: 17x for ReXNet-1.0, EfficientNet-B0 and MobileNetV2 at batch 64 (16.7-20.3x at batch 8), a wider
#: model more (ReXNet-2.0: 35x), benchmarks/activation_memory.py. Every run computes the eager output
#: first (rexbench.measure.checks.parity), so every configuration needs it.
ACTIVATIONS_PER_INPUT = 17
_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


def available_bytes(device: str, meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Memory free for a new run on `device` now, or None when it cannot be read."""
    if device.startswith("cuda"):
        import torch

        try:
            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        except (RuntimeError, AssertionError, ValueError):  # no CUDA runtime to ask
            return None
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def known_shape(spec: ModelSpec, config: RunConfig) -> tuple[int, ...] | None:
    """The (C, H, W) `config` measures `spec` at, when it is known without building the model."""
    from rexbench.models.shapes import default_input_shape

    if config.input_shape is not None:
        return tuple(config.input_shape)
    if config.resolution is not None:
        return (3, config.resolution, config.resolution)
    return default_input_shape(spec) if spec.source == "zoo" else None


def check_batch_memory(
    specs: Sequence[ModelSpec], configs: Sequence[RunConfig], device: str, free: int | None = None
) -> None:
    """A RexbenchError when a model's input batch and its activations cannot fit in `free` bytes
    (default: `available_bytes(device)`; nothing is checked when that is unknown)."""
    if free is None:
        free = available_bytes(device)
    if free is None:
        return
    for config in configs:
        for spec in specs:
            shape = known_shape(spec, config)
            if shape is None:
                continue
            image = math.prod(shape) * _BYTES[config.dtype]
            batch = config.batch_size * image
            if batch * (1 + ACTIVATIONS_PER_INPUT) > free:
                raise RexbenchError(_too_big(spec, config, shape, batch, free))


def _too_big(
    spec: ModelSpec, config: RunConfig, shape: tuple[int, ...], batch: int, free: int
) -> str:
    """The one line: what the batch needs, what there is, the largest batch that fits."""
    image = batch // config.batch_size
    largest = free // (image * (1 + ACTIVATIONS_PER_INPUT))
    if largest >= 1:
        advice = f"use --batch-size {largest} or less"
    else:
        advice = "even one image does not fit: use a smaller --resolution or --input-shape"
    where = "this machine" if config.device == "cpu" else config.device
    dims = "x".join(map(str, shape))
    return (
        f"--batch-size {config.batch_size}: the input batch of {spec} ({config.batch_size} x {dims} "
        f"{config.dtype}) needs {_size(batch)} and its activations roughly {ACTIVATIONS_PER_INPUT}x "
        f"that ({_size(batch * ACTIVATIONS_PER_INPUT)}); {where} has {_size(free)} of memory "
        f"available; {advice}"
    )


def _size(n: int) -> str:
    """ "602.1 GB": decimal units, as the allocators count bytes."""
    units = ("B", "kB", "MB", "GB", "TB")
    power = min(int(math.log10(max(n, 1)) // 3), len(units) - 1)
    return f"{n / 1000**power:.1f} {units[power]}"
