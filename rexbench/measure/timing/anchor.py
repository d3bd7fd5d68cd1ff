"""The drift anchor: a fixed reference workload timed interleaved with every model measurement.

Why: the speed of a shared machine drifts by 20-30%
within minutes, so a latency measured today cannot be compared with a baseline measured last
week as it is. `rexbench profile` therefore also times this anchor, in the same interleaved rounds
as the model's configurations (A B C anchor, B C anchor A, ...), and stores its raw samples in
every record (`record.Timing.anchor_ns`, with `anchor` = name, version, device, threads). A gate
compares

    r = median(model samples) / median(anchor samples)

now against the same ratio in the baseline record: machine-wide slowdowns scale both and cancel,
a slower model changes r. The ratio cancels drift only to first order (the anchor is one small
net, the models are many), so a gate must still be calibrated with A/A runs.

Design rules (change any of them -> bump the version, and records with another anchor version
are not ratio-comparable):

* On CPU (`mobile`, version 2): a small inverted-residual net built like the models measured
  (`mobile_network`: stem, nine blocks with depthwise 3x3 and squeeze-excitation, head; 0.58 M
  parameters, 49.3 M conv + linear multiply-adds) on one 3x128x128 image, at the thread count
  of the configurations it is timed with. Weights and input from a seeded generator, fp32,
  contiguous, eager, nothing compiled; 2.8 ms at 2 threads, 5.2 ms at 1 on this project's
  2-core AMD EPYC (this project's reference machine).
  Why not the four-convolution net at one thread of version 1: on a virtual machine whose
  hypervisor moves the virtual CPUs between one core complex and two (rexbench.measure.machine.placement),
  a 2-thread model runs 26% slower on two complexes while a 1-thread anchor does not move, so the
  ratio moved by +23% (a false regression); the mobile net at the model's threads slows down with
  it and its ratio moved by -3.2% (benchmarks/anchor_placement.py, results/anchor-placement/).
  A configuration that runs on another thread count than its baseline gets another anchor, and the
  gate compares it raw.
* On CUDA (`conv4`, version 2, unchanged since version 1): four convolutions (3x3 conv, depthwise
  3x3, 1x1 conv, strided 3x3 conv, ReLUs) on a 64x16x56x56 batch on the measured device, fp32 with
  TF32 and cuDNN benchmark off (deterministic kernel choice), timed with the same CUDA events as
  the model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

VERSION = 2
SEED = 0
CPU_NAME, CPU_INPUT_CHW = "mobile", (3, 128, 128)
CUDA_NAME, CUDA_INPUT_CHW, CUDA_BATCH = "conv4", (16, 56, 56), 64
#: Multiply-adds of one image (Conv + Linear rule of rexbench.measure.counting.counts), for reference.
CPU_MACS = 49_289_344
CUDA_MACS = 56 * 56 * 32 * 16 * 9 + 56 * 56 * 32 * 9 + 56 * 56 * 64 * 32 + 28 * 28 * 32 * 64 * 9


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


def conv4_network():  # noqa: ANN201 - torch is imported lazily
    """Four convolutions on 16 channels (the CUDA anchor; version 1's anchor on CPU too)."""
    from torch import nn

    channels = CUDA_INPUT_CHW[0]
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


#: The mobile anchor's blocks: (out channels, expansion, stride, squeeze-excitation), widths growing
#: block by block as in ReXNet (paper Sec. 4.1), after a 16-channel stride-2 stem.
MOBILE_BLOCKS = (
    (16, 1, 1, False), (24, 6, 2, False), (24, 6, 1, False), (40, 6, 2, True), (40, 6, 1, True),
    (64, 6, 2, True), (64, 6, 1, True), (96, 6, 1, True), (128, 6, 2, True),
)  # fmt: skip
MOBILE_HEAD = 512


def mobile_network():  # noqa: ANN201 - torch is imported lazily
    """A small inverted-residual net built like the models measured: conv-BN-SiLU stem, blocks of
    1x1 expansion, depthwise 3x3, optional squeeze-excitation, 1x1 projection (residual where the
    shape allows), 1x1 head, pooling, classifier. Many small layers and their thread barriers: it
    reacts to where the threads run as the models do, which the 4-conv net does not."""
    from torch import nn

    def cbn(cin: int, cout: int, k: int = 1, s: int = 1, groups: int = 1, act: bool = True):
        conv = nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False)
        return [conv, nn.BatchNorm2d(cout)] + ([nn.SiLU()] if act else [])

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, t: int, stride: int, se: bool) -> None:
            super().__init__()
            mid = cin * t
            layers = (cbn(cin, mid) if t > 1 else []) + cbn(mid, mid, 3, stride, groups=mid)
            if se:
                layers.append(SqueezeExcite(mid))
            self.body = nn.Sequential(*layers, *cbn(mid, cout, act=False))
            self.residual = stride == 1 and cin == cout

        def forward(self, x):  # noqa: ANN001, ANN202
            return x + self.body(x) if self.residual else self.body(x)

    class SqueezeExcite(nn.Module):
        def __init__(self, ch: int) -> None:
            super().__init__()
            mid = max(8, ch // 12)
            self.gate = nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(ch, mid, 1),
                nn.ReLU(),
                nn.Conv2d(mid, ch, 1),
                nn.Sigmoid(),
            )

        def forward(self, x):  # noqa: ANN001, ANN202
            return x * self.gate(x)

    layers, cin = cbn(3, 16, 3, 2), 16
    for cout, t, stride, se in MOBILE_BLOCKS:
        layers.append(Block(cin, cout, t, stride, se))
        cin = cout
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(MOBILE_HEAD, 100)]
    layers += cbn(cin, MOBILE_HEAD) + head
    return nn.Sequential(*layers)


def _set_state(threads: int | None, cuda: bool) -> None:
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    if cuda:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def make_anchor(device: str = "cpu", threads: int | None = None) -> Anchor:
    """The anchor for `device` ("cpu", "cuda", "cuda:N"): same net and seed on every machine; on CPU
    it runs on `threads` threads (the measured configuration's; None: torch's current count)."""
    import torch

    cuda = device.startswith("cuda")
    name, chw = (CUDA_NAME, CUDA_INPUT_CHW) if cuda else (CPU_NAME, CPU_INPUT_CHW)
    batch, threads = (CUDA_BATCH, None) if cuda else (1, threads or torch.get_num_threads())
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG stream alone
        torch.manual_seed(SEED)
        net = (conv4_network() if cuda else mobile_network()).eval()
        x = torch.randn(batch, *chw)
    net = net.to(device)
    x = x.to(device)
    for p in net.parameters():
        p.requires_grad_(False)
    shape = "x".join(map(str, (batch, *chw)))
    return Anchor(
        name=name,
        version=VERSION,
        device=device,
        batch_size=batch,
        threads=threads,
        fn=functools.partial(net, x),
        setup=lambda: _set_state(threads, cuda),
        description=(
            f"{name} net, input {shape}, fp32, eager, seed {SEED}, "
            + ("TF32 and cuDNN benchmark off" if cuda else f"{threads} thread(s)")
        ),
        extra={"macs_per_image": CUDA_MACS if cuda else CPU_MACS},
    )
