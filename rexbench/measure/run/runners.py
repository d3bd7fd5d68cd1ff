"""The runners of one measurement (rexbench.measure.timing.loop.Runner), one per prepared
configuration: named after its configuration, its threads / cuDNN / TF32 re-applied and the L2
flushed before its calls as the configuration says, and the kernel's contention counters read as
the last thing before each of its chunks (rexbench.measure.machine.contention)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rexbench.measure.machine import own_threads
from rexbench.measure.timing.loop import Runner

if TYPE_CHECKING:
    from rexbench.measure.config import RunConfig
    from rexbench.measure.machine.contention import ChunkSampler
    from rexbench.measure.run.rounds import PreparedConfig, RoundOptions


def config_runners(
    items: Sequence[PreparedConfig], names: list[str], flush: Callable[[], None] | None
) -> list[Runner]:
    """One runner per configuration, named `names`; `flush` before each call of the configurations
    with flush_l2. A worker process times its own chunks (rexbench.measure.run.workers): its
    runner gets neither the backend settings nor the flush."""
    return [
        Runner(
            label,
            item.prepared.run,
            item.config.batch_size,
            _backend_setter(item) if item.remote is None else None,
            before_call=flush if item.config.flush_l2 and item.remote is None else None,
            remote=item.remote,
        )
        for label, item in zip(names, items, strict=True)
    ]


def labelled(
    items: Sequence[PreparedConfig], name: str
) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Runner names (the config labels; "model label" when several models share the rounds) and
    each runner's (model, label)."""
    configs = [item.config for item in items]
    models = [str(item.spec) if item.spec is not None else name for item in items]
    labels = [""] * len(items)
    for model in dict.fromkeys(models):  # a label shared by two configs of one model gets its id
        mine = [i for i, m in enumerate(models) if m == model]
        for i, label in zip(mine, _runner_names([configs[i] for i in mine]), strict=True):
            labels[i] = label
    several = len(set(models)) > 1
    names = [f"{m} {label}" if several else label for m, label in zip(models, labels, strict=True)]
    return names, {n: (m, label) for n, m, label in zip(names, models, labels, strict=True)}


def flusher(items: Sequence[PreparedConfig], options: RoundOptions) -> Callable[[], None] | None:
    """One L2 flush for every configuration that asks for it (rexbench.measure.timing.l2flush)."""
    if not any(item.config.flush_l2 for item in items):
        return None
    return options.make_flusher(options.device)


def sampled(
    setup: Callable[[], None] | None, sampler: ChunkSampler, runner: int
) -> Callable[[], None]:
    """The runner's setup, then a contention reading: the last thing before its chunk starts."""

    def run() -> None:
        if setup is not None:
            setup()
        sampler.start(runner)

    return run


def _backend_setter(item: PreparedConfig) -> Callable[[], None]:
    """Re-apply a config's threads / cuDNN / TF32 (as in force when it was prepared) before its
    chunks; a CPU runtime's chunk also waits for PyTorch's spinning threads to stop
    (measure.machine.own_threads; what it waited goes into the runtime's record)."""
    config, threads = item.config, item.backend["threads"]
    settle = None
    if config.runtime is not None and config.device == "cpu" and item.prepared.runtime is not None:
        settle = own_threads.Settle()
        item.prepared.runtime["settle_own_threads"] = settle.info

    def setup() -> None:
        import torch

        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = config.cudnn_benchmark
        torch.backends.cudnn.allow_tf32 = config.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = config.allow_tf32
        if settle is not None:
            settle()

    return setup


def _runner_names(configs: list[RunConfig]) -> list[str]:
    """Config labels; a label shared by several configs gets its config_id appended."""
    labels = [c.label for c in configs]
    return [
        label if labels.count(label) == 1 else f"{label}#{c.config_id[:6]}"
        for label, c in zip(labels, configs, strict=True)
    ]
