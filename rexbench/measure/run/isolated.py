"""One model's configurations prepared in worker processes (rexbench.measure.run.workers), ready to
be timed in the rounds of rexbench.measure.run.rounds.

Every configuration's worker starts first, so that its interpreter and imports overlap with what
this process does meanwhile: build the model once and count it once per input shape (the record's
counts, rexbench.measure.run.counted). Then the workers prepare one at a time, each alone on the
machine, as a configuration is prepared in this process: build, prepare, check the output against
the eager fp32 model's. The model built here is only counted; each worker builds its own copy in a
fresh heap, so no heap order is needed. A configuration that fails to prepare is one line (`failed`)
and its worker stops; a worker that dies meanwhile stays in the rounds, answers nothing, and its
record says why (`Worker.finish`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rexbench.measure.config import RunConfig
from rexbench.measure.machine import env as envmod
from rexbench.measure.run.counted import counted_shapes
from rexbench.measure.run.rounds import PreparedConfig, ProfileEvent, RoundOptions
from rexbench.measure.run.workers import WorkerPool
from rexbench.spec import ModelSpec


def prepare_in_workers(
    spec: ModelSpec,
    configs: Sequence[RunConfig],
    options: RoundOptions,
    failed: Callable[[str, str], None],
    pool: WorkerPool,
) -> tuple[list[PreparedConfig], dict[str, Any]]:
    """Start a worker per configuration, count the model here, then have each worker prepare
    its configuration; the prepared ones (with workers that died meanwhile) and this machine's
    fingerprint. failed(label, reason): a configuration that could not be prepared."""
    import torch

    from rexbench.models.factory import create_model

    name = str(spec)
    # a configuration without a thread count runs on this process's, as it would in here
    workers = [pool.start(spec, c.label, c.threads or torch.get_num_threads()) for c in configs]
    options.emit(ProfileEvent("build", name))
    model = create_model(spec, weights=options.weights)
    shapes, counts = counted_shapes(spec, model, configs, options)
    del model
    base_env = envmod.fingerprint()
    for worker in workers:  # every import done before any preparation is timed (compile_s)
        worker.started()
    items: list[PreparedConfig] = []
    for i, (config, shape, worker) in enumerate(zip(configs, shapes, workers, strict=True)):
        options.emit(ProfileEvent("prepare", name, config.label, i, len(configs)))
        reason = worker.setup(spec, config, shape, options.weights)
        if reason is not None:
            failed(config.label, reason)
            worker.stop()
            continue
        prepared = PreparedConfig(
            config,
            worker.prepared,
            backend=worker.backend,
            threads=worker.thread_info,
            counts=counts[shape],
            spec=spec,
            parity=worker.parity,
            remote=worker,
        )
        items.append(prepared)
    return items, base_env
