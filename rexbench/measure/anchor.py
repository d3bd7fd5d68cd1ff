"""The drift anchor: a fixed reference workload timed interleaved with every model measurement.

Why: the speed of a shared machine drifts by 20-30%
within minutes, so a latency measured today cannot be compared with a baseline measured last
week as it is. `rexbench profile` therefore also times this anchor, in the same interleaved rounds
as the model's configurations (A B C anchor, B C anchor A, ...), and stores its raw samples in
every record (`record.Timing.anchor_ns`, with `anchor` = name, version, device, threads). A gate
compares

    r = median(model samples) / median(anchor samples)

now against the same ratio in the baseline record: machine-wide slowdowns scale both and cancel,
a slower model changes r. The ratio cancels drift only to first order (the anchor is small and
single-threaded, the model may be neither), so a gate must still be calibrated with A/A runs.

Design rules (change any of them -> bump the version, and records with another anchor version
are not ratio-comparable):

* Fixed workload: a four-convolution net (3x3 conv, depthwise 3x3, 1x1 conv, strided 3x3 conv,
  ReLUs, as in the models measured) on one fixed 16x56x56 input; weights and input come from a
  seeded generator, fp32, contiguous memory, eager mode, nothing compiled. About 36 M
  multiply-adds, 1-3 ms on this project's 2-core AMD EPYC at one thread
  (this project's reference machine).
* Fixed thread count 1 on CPU, whatever the measured configuration uses: a configuration that
  runs on fewer threads than its baseline then shows up as a higher ratio, as it should.
* On CUDA: the same net at batch 64 on the measured device, fp32 with TF32 and cuDNN benchmark
  off (deterministic kernel choice), timed with the same CUDA events as the model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

NAME = "conv4"
VERSION = 1
SEED = 0
INPUT_CHW = (16, 56, 56)
CPU_THREADS = 1
CUDA_BATCH = 64
#: Multiply-adds of one batch-1 call (Conv + Linear rule of rexbench.measure.counting), for reference.
MACS = 56 * 56 * 32 * 16 * 9 + 56 * 56 * 32 * 9 + 56 * 56 * 64 * 32 + 28 * 28 * 32 * 64 * 9


@dataclass
class Anchor:
    """A ready-to-call reference workload. `setup()` puts the global torch state it needs in place
    (call it outside timed regions); `fn()` runs one batch."""

    name: str
    version: int
    device: str
    batch_size: int
    threads: int | None
    fn: Callable[[], object]
    setup: Callable[[], None]
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """What a record stores about the anchor: every field but the callables, `extra` spread out."""
        skip = ("fn", "setup", "extra")
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        return data | self.extra


def _network():  # noqa: ANN202 - torch is imported lazily
    from torch import nn

    channels = INPUT_CHW[0]
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, groups=32),
        nn.ReLU(),
        nn.Conv2d(32, 64, 1),
        nn.ReLU(),
        nn.Conv2d(64, 32, 3, stride=2, padding=1),
        nn.ReLU(),
    )


def _set_state(threads: int, cuda: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    if cuda:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def make_anchor(device: str = "cpu") -> Anchor:
    """The anchor for `device` ("cpu", "cuda", "cuda:N"): same net and seed on every machine."""
    import torch

    cuda = device.startswith("cuda")
    batch = CUDA_BATCH if cuda else 1
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG stream alone
        torch.manual_seed(SEED)
        net = _network().eval()
        x = torch.randn(batch, *INPUT_CHW)
    net = net.to(device)
    x = x.to(device)
    for p in net.parameters():
        p.requires_grad_(False)
    return Anchor(
        name=NAME,
        version=VERSION,
        device=device,
        batch_size=batch,
        threads=CPU_THREADS,
        fn=functools.partial(net, x),
        setup=lambda: _set_state(CPU_THREADS, cuda),
        description=(
            f"4-conv net, input {batch}x{'x'.join(map(str, INPUT_CHW))}, fp32, eager, "
            f"seed {SEED}, {CPU_THREADS} thread"
            + (", TF32 and cuDNN benchmark off" if cuda else "")
        ),
        extra={"macs_per_image": MACS},
    )
