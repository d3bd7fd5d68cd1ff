"""rexbench.rank.parallel: chunks of networks, their merge, and the local process pool give the
single-process study bit for bit."""

from __future__ import annotations

import json

import pytest

from rexbench.errors import RexbenchError
from rexbench.rank import parallel
from rexbench.rank.measures import parse_measure
from rexbench.rank.readings import Reading
from rexbench.rank.study import StudyConfig, run_measures, run_study

CONFIG = StudyConfig(
    networks=5,
    ratios=(0.25, 1.0),
    blocks=("conv1x1", "ib_dw3x3"),
    activations=("relu", "none"),
    reading=Reading(measure="rank", d_out_range=(8, 16), spatial=2),
)


def as_json(result) -> str:
    return json.dumps(result.to_dict(), sort_keys=True)


@pytest.fixture(scope="module")
def whole():
    return run_study(CONFIG)


def test_chunks_cover_every_network_once_in_order() -> None:
    assert parallel.chunks(10, 3) == [range(0, 4), range(4, 7), range(7, 10)]
    assert parallel.chunks(2, 8) == [range(0, 1), range(1, 2)]  # never an empty chunk
    assert parallel.chunks(7, 1) == [range(0, 7)]


def test_any_split_merges_to_the_single_run_bit_for_bit(whole) -> None:
    measures = [parse_measure("rank"), parse_measure("erank")]
    single = run_measures(CONFIG, measures)
    for parts in (2, 5):
        merged = parallel.merge(
            [
                parallel.run_chunk(CONFIG, measures, r)
                for r in parallel.chunks(CONFIG.networks, parts)
            ]
        )
        assert {k: as_json(v) for k, v in merged.items()} == {
            k: as_json(v) for k, v in single.items()
        }
    assert as_json(single["rank"]) == as_json(whole)


def test_two_processes_give_the_single_process_study(whole) -> None:
    seen = []
    result = parallel.run_study_local(CONFIG, 2, lambda done, total: seen.append((done, total)))
    assert as_json(result) == as_json(whole)
    total = CONFIG.networks * len(CONFIG.ratios) * len(CONFIG.blocks)
    assert seen[-1] == (total, total) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_workers_must_be_positive() -> None:
    with pytest.raises(RexbenchError, match="--workers must be at least 1"):
        parallel.run_study_local(CONFIG, 0)
