"""CUDA graphs as a configuration (measure.cudagraphs, the `cudagraphs` preset): warm-up until a
replay is seen, the step mark before every call, recompilations counted per runner and phase.
Scripted tree states and fake compile counters; nothing needs a GPU."""

from __future__ import annotations

import torch

from rexbench.measure.backends import cudagraphs
from rexbench.measure.config import RunConfig


def scripted(states):
    it = iter(states)
    return lambda: next(it)


def test_cudagraphs_preset():
    config = RunConfig.preset("cudagraphs", device="cuda")
    assert config.compile and config.channels_last and config.compile_mode == "reduce-overhead"
    assert config.label == "cudagraphs" and config.preset_name == "cudagraphs"
    assert config.batch_size == 64
    assert RunConfig.from_dict(config.to_dict()).label == "cudagraphs"
    assert config.config_id != RunConfig.preset("compile_cl", device="cuda").config_id
    assert cudagraphs.uses_cudagraphs("reduce-overhead", "cuda:0")
    assert cudagraphs.uses_cudagraphs("max-autotune", "cuda")  # max-autotune replays graphs too
    assert not cudagraphs.uses_cudagraphs("reduce-overhead", "cpu")
    assert not cudagraphs.uses_cudagraphs("default", "cuda")


def test_warm_up_until_a_replay_is_seen():
    calls, syncs = [], []
    info = cudagraphs.warm_until_recorded(
        lambda: calls.append(torch.is_inference_mode_enabled()),
        scripted(["warmup", "recording", "execution", "execution"]),
        synchronize=lambda: syncs.append(1),
    )
    assert info == {
        "warmup_calls": 3,
        "recorded": True,
        "states": ["warmup", "recording", "execution"],
    }
    assert calls == [True, True, True]  # under inference mode, as the timing loop: no recompile
    assert len(syncs) == 3


def test_warm_up_gives_up_or_says_it_cannot_tell():
    never = cudagraphs.warm_until_recorded(lambda: None, lambda: "none", max_calls=4)
    assert never == {"warmup_calls": 4, "recorded": False, "states": ["none"] * 4}
    unknown = cudagraphs.warm_until_recorded(lambda: None, lambda: None)
    assert unknown["recorded"] is None and unknown["warmup_calls"] == 3


def test_tree_state_without_a_gpu_does_not_raise():
    assert cudagraphs.tree_state("cuda:0") in (None, "none")


def test_stepping_marks_a_new_step_before_every_call(monkeypatch):
    log = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: log.append("mark"))
    call = cudagraphs.stepping(lambda x: log.append(("model", x)) or x)
    assert call(1) == 1 and call(2) == 2
    assert log == ["mark", ("model", 1), "mark", ("model", 2)]


def test_compile_watch_attributes_new_graphs_to_runner_and_phase():
    counters = {"graphs": 10, "cudagraph_skips": 0}
    watch = cudagraphs.CompileWatch(["a", "b", "anchor:conv4"], read=lambda: dict(counters))
    watch.seen("a", "warmup")
    counters["graphs"] += 1  # b's warm-up compiled a graph
    watch.seen("b", "warmup")
    watch.seen("a", "timing")
    counters["graphs"] += 2
    counters["cudagraph_skips"] += 1
    watch.seen("b", "timing")
    watch.seen("anchor:conv4", "timing")
    watch.seen("unknown", "timing")  # not a runner: ignored, nothing attributed
    assert watch.counts["a"] == {"warmup_graphs": 0, "timing_graphs": 0, "cudagraph_skips": 0}
    assert watch.counts["b"] == {"warmup_graphs": 1, "timing_graphs": 2, "cudagraph_skips": 1}


def test_compile_counters_are_read_from_dynamo():
    counts = cudagraphs.compile_counters()
    assert set(counts) == {"graphs", "cudagraph_skips"} and all(v >= 0 for v in counts.values())


def test_recompile_warnings():
    assert cudagraphs.recompile_warnings(None, True) == []
    quiet = {"warmup_graphs": 0, "timing_graphs": 0, "cudagraph_skips": 0}
    assert cudagraphs.recompile_warnings(quiet, True) == []
    (text,) = cudagraphs.recompile_warnings({**quiet, "timing_graphs": 2}, False)
    assert text.startswith(
        "recompiled: 0 graph(s) compiled during the warm-up and 2 during the timed"
    )
    (skip,) = cudagraphs.recompile_warnings({**quiet, "cudagraph_skips": 1}, True)
    assert skip.startswith("CUDA graphs skipped for 1 graph(s)")
    assert cudagraphs.recompile_warnings({**quiet, "cudagraph_skips": 1}, False) == []
