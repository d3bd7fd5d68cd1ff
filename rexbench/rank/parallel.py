"""The rank study over several processes: the networks split into chunks of consecutive indices,
each chunk sampled by `rexbench.rank.study.run_measures` in a worker, the chunks joined in index order.

Network i is seeded by (seed, i) alone and every process computes with the study's own thread count
(one by default), so the joined result is bit-identical to a single-process run, whatever the number
of workers or chunks. The local pool runs spawned processes (no fork of a process whose torch thread
pools may already run); `rexbench.fleet.rank` sends the same chunks to a Ray cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rexbench.errors import RexbenchError

if TYPE_CHECKING:
    from rexbench.rank.measures import Measure
    from rexbench.rank.study import StudyConfig, StudyResult

#: Chunks per worker: small enough for a live progress bar and an even finish, large enough that
#: sending a chunk costs nothing next to sampling it.
CHUNKS_PER_WORKER = 4
ProgressFn = Callable[[int, int], None]


def chunks(networks: int, parts: int) -> list[range]:
    """0 .. networks - 1 as at most `parts` ranges of consecutive indices, sizes within one."""
    parts = max(1, min(parts, networks))
    size, extra = divmod(networks, parts)
    out, start = [], 0
    for k in range(parts):
        stop = start + size + (k < extra)
        out.append(range(start, stop))
        start = stop
    return out


def units(config: StudyConfig, networks: range) -> int:
    """Progress units of a chunk: one per (network, ratio, block), as run_measures counts them."""
    return len(networks) * len(config.ratios) * len(config.blocks)


def run_chunk(
    config: StudyConfig, measures: Sequence[Measure], networks: range
) -> dict[str, StudyResult]:
    """The networks `networks` of the study (what a worker runs)."""
    from rexbench.rank.study import run_measures

    return run_measures(config, measures, networks=networks)


def merge(parts: Sequence[dict[str, StudyResult]]) -> dict[str, StudyResult]:
    """Chunk results (in index order) -> one result per measure, as a single run returns it."""
    from rexbench.rank.study import StudyResult

    out = {}
    for name, first in parts[0].items():
        pieces = [p[name] for p in parts]
        ranks = {
            block: {
                act: [sum((p.ranks[block][act][ri] for p in pieces), []) for ri in range(len(per))]
                for act, per in acts.items()
            }
            for block, acts in first.ranks.items()
        }
        out[name] = StudyResult(
            config=first.config,
            d_out=sum((p.d_out for p in pieces), []),
            ranks=ranks,
            inputs=[sum((p.inputs[ri] for p in pieces), []) for ri in range(len(first.inputs))],
        )
    return out


def run_local(
    config: StudyConfig,
    measures: Sequence[Measure],
    workers: int,
    progress: ProgressFn | None = None,
) -> dict[str, StudyResult]:
    """run_measures over `workers` processes of this machine (1: in this process)."""
    from rexbench.rank.study import run_measures

    if workers < 1:
        raise RexbenchError(f"--workers must be at least 1, got {workers}")
    if workers == 1:
        return run_measures(config, measures, progress)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ranges = chunks(config.networks, workers * CHUNKS_PER_WORKER)
    total = sum(units(config, r) for r in ranges)
    results: list[dict[str, StudyResult] | None] = [None] * len(ranges)
    done = 0
    spawn = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(ranges)), mp_context=spawn)
    try:
        futures = {
            pool.submit(run_chunk, config, tuple(measures), r): i for i, r in enumerate(ranges)
        }
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            done += units(config, ranges[i])
            if progress is not None:
                progress(done, total)
    finally:  # Ctrl-C or a failing chunk: drop what has not started, do not wait for the rest
        pool.shutdown(wait=False, cancel_futures=True)
    return merge([r for r in results if r is not None])


def run_study_local(
    config: StudyConfig, workers: int, progress: ProgressFn | None = None
) -> StudyResult:
    """`rexbench.rank.study.run_study` over `workers` processes (1: run_study itself, here)."""
    from rexbench.rank import study

    if workers == 1:
        return study.run_study(config, progress)
    measure = config.reading.parsed_measure
    return run_local(config, [measure], workers, progress)[measure.name]
