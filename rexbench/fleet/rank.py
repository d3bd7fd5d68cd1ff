"""The rank study's networks spread over a Ray cluster's CPUs: the chunks of
`rexbench.rank.parallel`, one task each. Counting work, not timing: a task holds one CPU, several
share a node, Ray spreads them over the nodes and retries a chunk whose node died (a chunk's numbers
depend only on its network indices, so a retry gives the same ones).

The joined result equals the single-process run bit for bit on machines of one kind; nodes whose
CPUs pick other math kernels (AVX-512 against AVX2, another torch) may differ in the last bits of
the continuous measures (erank, srank, nuclear).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

from rexbench.errors import RexbenchError, first_line
from rexbench.rank import parallel

if TYPE_CHECKING:
    from rexbench.rank.measures import Measure
    from rexbench.rank.study import StudyConfig, StudyResult


def run_on_cluster(
    ray: ModuleType,
    config: StudyConfig,
    measures: Sequence[Measure],
    progress: parallel.ProgressFn | None = None,
) -> dict[str, StudyResult]:
    """run_measures over the CPUs of the connected cluster."""
    from ray.exceptions import RayError

    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    ranges = parallel.chunks(config.networks, cpus * parallel.CHUNKS_PER_WORKER)
    task = ray.remote(parallel.run_chunk).options(num_cpus=1, scheduling_strategy="SPREAD")
    index = {task.remote(config, tuple(measures), r): i for i, r in enumerate(ranges)}
    results: list[dict[str, StudyResult] | None] = [None] * len(ranges)
    total = sum(parallel.units(config, r) for r in ranges)
    done, pending = 0, list(index)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                results[index[ref]] = ray.get(ref)
                done += parallel.units(config, ranges[index[ref]])
                if progress is not None:
                    progress(done, total)
    except RayError as exc:
        _cancel(ray, pending)
        cause = getattr(exc, "cause", None)
        if isinstance(cause, RexbenchError):
            raise RexbenchError(str(cause)) from None
        raise RexbenchError(
            f"rank study on the cluster failed: {first_line(cause or exc)}"
        ) from None
    except KeyboardInterrupt:
        _cancel(ray, pending)
        raise
    return parallel.merge([r for r in results if r is not None])


def _cancel(ray: ModuleType, refs: Sequence[object]) -> None:
    for ref in refs:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # finished meanwhile
            continue


def run_study_on_cluster(
    ray: ModuleType, config: StudyConfig, progress: parallel.ProgressFn | None = None
) -> StudyResult:
    """`rexbench.rank.study.run_study` over the cluster's CPUs."""
    measure = config.reading.parsed_measure
    return run_on_cluster(ray, config, [measure], progress)[measure.name]
