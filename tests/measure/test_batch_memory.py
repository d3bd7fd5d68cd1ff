"""Whether a batch fits, before any model is built: the input batch and roughly 17x it of activations
against the memory free (exact figures with the free memory given; the real figure read here)."""

from __future__ import annotations

import pytest

from rexbench.errors import RexbenchError
from rexbench.measure.config import RunConfig
from rexbench.measure.machine.memory import available_bytes, check_batch_memory, known_shape
from rexbench.spec import parse

REXNET = parse("rexnet_x1.0")
IMAGE = 3 * 224 * 224 * 4  # bytes of one fp32 image at the model's 224


def config(batch: int, **fields) -> RunConfig:
    return RunConfig.preset("eager", batch_size=batch, **fields)


def test_a_batch_that_does_not_fit_names_both_figures_and_the_largest_that_does():
    free = 10 * 10**9
    largest = free // (IMAGE * 18)
    assert largest == 922
    check_batch_memory([REXNET], [config(largest)], "cpu", free=free)  # fits: nothing raised
    with pytest.raises(RexbenchError) as caught:
        check_batch_memory([REXNET], [config(largest + 1)], "cpu", free=free)
    assert str(caught.value) == (
        "--batch-size 923: the input batch of rexnet_x1.0 (923 x 3x224x224 fp32) needs 555.7 MB "
        "and its activations roughly 17x that (9.4 GB); this machine has 10.0 GB of memory "
        "available; use --batch-size 922 or less"
    )


def test_half_precision_halves_the_need_and_a_resolution_changes_it():
    free = 10 * 10**9
    check_batch_memory([REXNET], [config(1845, dtype="bf16")], "cpu", free=free)
    with pytest.raises(RexbenchError, match="1846 x 3x224x224 bf16.*use --batch-size 1845 or less"):
        check_batch_memory([REXNET], [config(1846, dtype="bf16")], "cpu", free=free)
    with pytest.raises(RexbenchError, match="1 x 3x4096x4096 fp32.*even one image does not fit"):
        check_batch_memory([REXNET], [config(1, resolution=4096)], "cpu", free=10**9)


def test_a_shape_known_only_once_built_is_left_to_the_allocator():
    external = parse("py:nets.py:build")
    assert known_shape(external, config(1)) is None
    check_batch_memory([external], [config(10**9)], "cpu", free=1)  # not checked: no error
    assert known_shape(external, config(1, input_shape=(1, 32, 32))) == (1, 32, 32)
    with pytest.raises(RexbenchError, match="1000000000 x 1x32x32 fp32"):
        check_batch_memory([external], [config(10**9, input_shape=(1, 32, 32))], "cpu", free=1)


def test_free_memory_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(
        "MemTotal:       24000000 kB\nMemFree:        1000 kB\nMemAvailable:   20000000 kB\n"
    )
    assert available_bytes("cpu", meminfo) == 20_000_000 * 1024
    here = available_bytes("cpu")
    assert here is not None and here > 100 * 10**6
