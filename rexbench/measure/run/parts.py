"""What the profile path measures with, in one place: the device's operations (events, synchronize,
peak memory), its L2 flush, the clock, the drift anchor, the preparation of a configuration and the
eager fp32 output its output check compares with.

`profile_models` takes them as one `Parts` and hands them down; `REAL` holds the real ones and is
every caller's default. A test that needs a fake device, a scripted clock or a quick anchor passes its
own `Parts` (tests/_profile_fakes.py): this is the one place where test doubles enter the measuring
code, and nothing looks a function up on a module at call time. A run given any other parts than
`REAL` is measured in one process, never in worker processes (rexbench.measure.run.workers): a
worker cannot be handed Python objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rexbench.measure.backends.base import PreparedModel
from rexbench.measure.backends.prepare import prepare
from rexbench.measure.checks.parity import reference_output
from rexbench.measure.timing.anchor import Anchor, make_anchor
from rexbench.measure.timing.devices import DeviceOps, device_ops
from rexbench.measure.timing.l2flush import make_flusher
from rexbench.measure.timing.loop import Clock


@dataclass(frozen=True)
class Parts:
    """The real ones by default; a test replaces those it fakes (dataclasses.replace)."""

    device_ops: Callable[[str], DeviceOps] = device_ops  # (device) -> events, synchronize, memory
    make_flusher: Callable[[str], Callable[[], None]] = make_flusher  # (device) -> the L2 flush
    clock: Clock = time.perf_counter_ns  # () -> ns, where the device has no events
    make_anchor: Callable[[str, int | None], Anchor] = make_anchor  # (device, threads)
    # (model, config, *, input_shape, in_place, calibration)
    prepare: Callable[..., PreparedModel] = prepare
    reference_output: Callable[..., Any] = reference_output  # (model, config, shape): eager fp32


REAL = Parts()
