"""The search space, read from the backend registry: every preset whose backend is available, each
layout PyTorch takes, each dtype a backend lists and the machine runs, each thread count and
allocator; a backend registered later joins with nothing else changed; bad values are one line."""

from __future__ import annotations

import pytest

from rexbench.errors import RexbenchError
from rexbench.measure.backends.base import Backend, Option, Preset
from rexbench.measure.backends.registry import BACKENDS
from rexbench.tune import space
from rexbench.tune.space import Axes, Skipped, search_space, thread_counts

FP32 = Axes(dtypes=["fp32"], cores=2, in_process=True)
TORCH = ["eager", "channels_last", "compile", "compile_cl", "max"]
NCHW_MAX = "fold_bn+compile+freezing"  # max with PyTorch's default layout: no preset of its own


class Toy(Backend):
    """A backend that takes the model as it is, in fp32 only, with an option and two presets."""

    name = "toytune"
    title = "Toy"
    dtypes = ("fp32",)
    options = {"fast": Option(False, "a knob of its own")}

    def presets(self):
        return (Preset("toytune"), Preset("toytune_b", "fast", {"options": {"fast": True}}))

    def prepare(self, model, config, device, **kwargs):
        raise NotImplementedError


class Missing(Toy):
    name = "toymissing"
    title = "Missing runtime"
    module = "no_such_runtime_module"
    extra = "rexbench[toymissing]"
    options = {}

    def presets(self):
        return (Preset("toymissing"),)


@pytest.fixture
def toys():
    BACKENDS.register(Toy())
    BACKENDS.register(Missing())
    yield
    BACKENDS.unregister("toytune")
    BACKENDS.unregister("toymissing")


def names(found: space.Space) -> list[str]:
    return [c.name for c in found.candidates]


def test_thread_counts_double_up_to_the_cores() -> None:
    assert [thread_counts(n) for n in (1, 2, 3, 6, 8)] == [
        [1], [1, 2], [1, 2, 3], [1, 2, 4, 6], [1, 2, 4, 8]
    ]  # fmt: skip


def test_every_preset_layout_and_thread_count_in_screening_order() -> None:
    found = search_space(FP32)
    # one configuration of each backend in turn (PyTorch, ONNX Runtime, OpenVINO, PT2E), then the
    # second of each, and so on, all at their defaults
    turns = ["eager", "ort", "openvino", "pt2e_int8", "channels_last", "ort_int8", "openvino_int8"]
    in_turn = [*turns, *TORCH[2:]]
    assert names(found) == [
        *[f"{n} t2 steady" for n in in_turn],
        f"{NCHW_MAX} t2 steady",  # one setting off: the layout, then the threads
        *[f"{n} t1 steady" for n in in_turn],
        f"{NCHW_MAX} t1 steady",
    ]
    # the preset that records CUDA graphs is left out on the CPU, with its reason
    assert found.skipped == [Skipped("cudagraphs", space._SAME_ON_CPU)]
    assert {c.config.runs for c in found.candidates} == {1000}
    assert all(c.config.batch_size == 1 and c.config.dtype == "fp32" for c in found.candidates)


def test_a_backend_registered_later_joins_the_search_and_one_missing_is_skipped(toys) -> None:
    found = search_space(Axes(dtypes=["fp32", "bf16"], threads=[1], cores=2, in_process=True))
    toy = [c for c in found.candidates if c.config.runtime == "toytune"]
    assert [c.name for c in toy] == ["toytune t1 steady", "toytune_b t1 steady"]  # fp32 only
    missing = [s for s in found.skipped if s.what == "toymissing"]
    assert missing == [Skipped("toymissing", Missing().available("cpu"))]
    assert "pip install 'rexbench[toymissing]'" in missing[0].reason
    # the toy's first preset is screened with the first of every other backend
    assert names(found).index("toytune t1 steady") < names(found).index("channels_last t1 steady")


def here(**axes) -> Axes:
    """Axes in fp32 on a 2-core machine, in this process."""
    return Axes(**{"dtypes": ["fp32"], "cores": 2, "in_process": True, **axes})


def test_each_axis_narrows_the_space() -> None:
    found = search_space(here(configs=["max,ort"], threads=[1], layouts=["nchw"]))
    assert names(found) == ["ort t1 steady", f"{NCHW_MAX} t1 steady"]  # ort has no layout
    eager = {"configs": ["eager"], "threads": [2], "layouts": ["nchw"]}
    throughput = search_space(here(**eager, objective="throughput"))
    assert names(throughput) == ["eager t2 steady", "eager t2 steady b4", "eager t2 steady b16"]
    sized = search_space(here(**eager, batch_sizes=[8, 2, 8]))
    assert [c.config.batch_size for c in sized.candidates] == [2, 8]


def test_an_int8_preset_is_tried_in_fp32_only() -> None:
    """int8 presets quantize the fp32 model: no "openvino_int8+bf16" candidate to fail."""
    both = Axes(["openvino_int8"], [2], ["fp32", "bf16"], cores=2, in_process=True)
    assert names(search_space(both)) == ["openvino_int8 t2 steady"]


def test_candidates_that_differ_only_in_threads_share_their_numerics() -> None:
    found = search_space(Axes(configs=["ort"], dtypes=["fp32"], cores=2, in_process=True))
    one, two = found.candidates
    assert one.numerics == two.numerics and one.key != two.key
    assert one.kind == two.kind == ("ort", "fp32")


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        (Axes(configs=["nope"]), "unknown configuration 'nope'"),
        (Axes(threads=[3], cores=2), "--threads 3: this machine has 2 usable core(s); choose from 1 to 2"),
        (Axes(threads=[0], cores=2), "--threads 0: this machine has 2 usable core(s)"),
        (Axes(dtypes=["int4"]), "--dtype 'int4': choose from fp32, fp16, bf16"),
        (Axes(layouts=["nhcw"]), "--layout 'nhcw': choose from nhwc, nchw"),
        (Axes(allocators=["mimalloc"]), "--allocator 'mimalloc': choose from steady, system, jemalloc, tcmalloc"),
        (Axes(allocators=["jemalloc"], in_process=True), "in this process only steady"),
        (Axes(batch_sizes=[0]), "--batch-size 0: give a batch size of 1 or more"),
        (Axes(objective="speed"), "--objective 'speed': choose latency or throughput"),
        (Axes(configs=[" , "]), "--config needs a configuration name"),
        (Axes(configs=["ort"], dtypes=["bf16"]), "the search space is empty (nothing matched)"),
    ],
)  # fmt: skip
def test_a_bad_value_or_an_empty_space_is_one_line(axes: Axes, message: str) -> None:
    with pytest.raises(RexbenchError) as caught:
        search_space(axes)
    assert message in str(caught.value) and "\n" not in str(caught.value)
