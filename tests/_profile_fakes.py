"""Fakes shared by the profile, CLI and GPU check tests: tiny `py:` models, a scripted clock, a fake
CUDA device and a fake anchor. They reach the measuring code as one `Parts`
(rexbench.measure.run.parts), passed to profile_models, the CLI's `run` or the GPU check. Nothing here
measures real time."""

from __future__ import annotations

import contextlib
import textwrap
from dataclasses import replace
from pathlib import Path

from rexbench.measure.backends.prepare import prepare as real_prepare
from rexbench.measure.run.parts import REAL, Parts
from rexbench.measure.timing.anchor import Anchor

# Tiny: Conv2d(3, 4, 3, padding=1) -> global average pool -> Linear(4, 2), input 3x16x16.
# params: conv 3*4*9 + 4 = 112, linear 4*2 + 2 = 10 -> 122.
# macs_conv: conv 16*16 * 4 * 3*9 = 27_648, linear 2 * 4 = 8 -> 27_656.
TINY_PARAMS = 122
TINY_MACS = 27_656
TINY_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Tiny(nn.Module):
        default_input_shape = (3, 16, 16)

        def __init__(self, num_classes=2):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3)))


    class Hungry(Tiny):
        \"\"\"Runs at batch 1 (counting), runs out of memory on anything bigger.\"\"\"

        def forward(self, x):
            if x.shape[0] > 1:
                raise MemoryError()
            return super().forward(x)
    """
)


def write_tiny(folder: Path) -> Path:
    """Write nets.py into `folder`; specs are then "py:nets.py:Tiny" with folder as the cwd."""
    path = folder / "nets.py"
    path.write_text(TINY_SOURCE)
    return path


class ScriptedClock:
    """A perf_counter_ns stand-in: the k-th (start, end) pair of reads is `durations(k)` ns apart
    (default k + 1), so every sample tells at which position in the whole run it was taken."""

    def __init__(self, durations=None) -> None:
        self.reads = 0
        self.now = 1_000_000
        self.durations = durations or (lambda k: k + 1)

    def __call__(self) -> int:
        k, odd = divmod(self.reads, 2)
        self.reads += 1
        if odd:
            self.now += self.durations(k)
        return self.now


def fake_anchor(log: list | None = None) -> Anchor:
    """An anchor that does nothing (the clock decides its samples); logs its calls if asked."""

    def run() -> None:
        if log is not None:
            log.append("anchor")

    def setup() -> None:
        import torch

        torch.set_num_threads(1)

    return Anchor("fake", 0, "cpu", 1, 1, run, setup, "does nothing")


def fake_parts(clock=None, log: list | None = None, base: Parts = REAL) -> Parts:
    """`base` (the real parts) with the do-nothing anchor, and `clock` (a ScriptedClock) if given."""
    parts = replace(base, make_anchor=lambda device, threads: fake_anchor(log))
    return parts if clock is None else replace(parts, clock=clock)


class FakeEvent:
    def __init__(self, ops: FakeCudaOps, ident: int) -> None:
        self.ops, self.ident, self.t = ops, ident, None

    def record(self) -> None:
        self.t = self.ops.gpu_time
        self.ops.log.append("record")

    def elapsed_time(self, end: FakeEvent) -> float:
        assert self.ops.log[-1] == "synchronize", "elapsed_time read before synchronize"
        self.ops.log.append("elapsed")
        return (end.t - self.t) / 1e6  # milliseconds, as torch.cuda.Event


class FakeCudaOps:
    """A CUDA device as the timing loop sees it: logs every call; 'GPU time' advances by 2 ms
    for every model call (see `call`)."""

    name = "cuda:0"
    uses_events = True
    clock_name = "cuda_event"
    memory_method = "cuda_max_memory_allocated"

    def __init__(self) -> None:
        self.log: list[str] = []
        self.gpu_time = 0

    def call(self) -> None:
        self.log.append("call")
        self.gpu_time += 2_000_000

    def scope(self):
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        self.log.append("synchronize")

    def event(self) -> FakeEvent:
        return FakeEvent(self, len(self.log))

    def begin_memory(self) -> None:
        self.log.append("reset_peak")

    def end_memory(self) -> int:
        self.log.append("max_allocated")
        return 7_000_000

    def is_oom(self, exc: BaseException) -> bool:
        return False

    def after_oom(self) -> None:
        pass


def fake_cuda(monkeypatch, ops: FakeCudaOps) -> Parts:
    """The parts of a fake GPU: `ops` as its DeviceOps, an anchor whose every call is a model call
    on it, and prepare() routed to the CPU (a module cannot really move to a GPU here: the fake GPU
    computes in fp32, whatever the dtype, since this CPU may lack fp16 kernels); every model call
    advances the fake GPU clock. torch is told that it has one GPU (with bf16), the one thing only
    torch itself can be told."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)

    def cuda_anchor(device: str, threads: int | None = None) -> Anchor:
        anchor = fake_anchor()
        anchor.device, anchor.fn = device, ops.call
        return anchor

    def prepare_on_cpu(
        model, config, default_resolution=224, *, input_shape=None, in_place=False, calibration=None
    ):
        on_cpu = replace(config, device="cpu", dtype="fp32", flush_l2=False)  # flush_l2: CUDA only
        prepared = real_prepare(
            model, on_cpu, input_shape=input_shape, in_place=in_place, calibration=calibration
        )
        prepared.config, prepared.device = config, "cuda:0"
        module = prepared.module

        def on_gpu(x):
            ops.call()
            return module(x)

        prepared.module = on_gpu
        return prepared

    return Parts(device_ops=lambda device: ops, make_anchor=cuda_anchor, prepare=prepare_on_cpu)
