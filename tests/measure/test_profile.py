"""rexbench.measure.run.profile: orchestration with a scripted clock and a tiny `py:` model (no timing asserts)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from _profile_fakes import (
    TINY_MACS,
    TINY_PARAMS,
    FakeCudaOps,
    ScriptedClock,
    fake_cuda,
    fake_parts,
    write_tiny,
)

from rexbench.errors import RexbenchError
from rexbench.measure.config import RunConfig
from rexbench.measure.counting.counts import count_model
from rexbench.measure.run.parts import REAL
from rexbench.measure.run.profile import ProfileEvent, profile_models
from rexbench.measure.timing import anchor as anchor_mod
from rexbench.records.schema import Record
from rexbench.records.store import load_record, load_records

EAGER = RunConfig.preset("eager")
CL = RunConfig.preset("channels_last")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """cwd = tmp_path with nets.py in it; returns the spec of the Tiny model."""
    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    return "py:nets.py:Tiny"


def test_records_keep_every_sample_anchor_and_counts_and_read_back(tiny, tmp_path):
    clock = ScriptedClock()
    written = []
    records = profile_models(
        [tiny],
        [EAGER, CL],
        runs=4,
        warmup=1,
        round_size=2,
        out_dir=tmp_path / "results",
        parts=fake_parts(clock),
        on_record=lambda record, path: written.append(path),
    )
    # reads come in (start, end) pairs; pair k lasts k + 1 ns. Warm-up: eager, cl, anchor (1 call
    # each); round 0: eager x2, cl x2, anchor x2; round 1 starts with the next runner: cl, anchor, eager.
    eager, cl = records
    assert eager.timing.warmup_ns == [1] and cl.timing.warmup_ns == [2]
    assert eager.timing.samples_ns == [4, 5, 14, 15]
    assert cl.timing.samples_ns == [6, 7, 10, 11]
    assert eager.timing.anchor_ns == cl.timing.anchor_ns == [8, 9, 12, 13]
    assert eager.timing.anchor["name"] == "fake" and eager.timing.anchor["threads"] == 1
    assert clock.reads == 2 * (3 * 1 + 3 * 4)  # nothing else read the clock

    assert [r.run.label for r in records] == ["eager", "channels_last"]
    assert eager.model.spec == "py:nets.py:Tiny" and eager.model.provenance["factory"] == "Tiny"
    assert eager.counts["params"] == TINY_PARAMS and eager.counts["macs_conv"] == TINY_MACS
    assert eager.counts["input_shape"] == [1, 3, 16, 16]
    assert eager.timing.preparation["input_shape"] == [1, 3, 16, 16]
    assert eager.timing.compile_s is None and eager.timing.clock == "perf_counter_ns"
    assert eager.run.config["runs"] == 4 and eager.run.config["warmup"] == 1
    assert eager.timing.device_start["loadavg"] is not None and eager.timing.device_end
    assert eager.env["machine_id"] and eager.env["threads"]["torch_num_threads"] >= 1
    # derived numbers, by hand: median of [4, 5, 14, 15] = 9.5 ns; anchor median 10.5 ns
    assert eager.summary["median"] == 9.5 and eager.summary["anchor_median"] == 10.5
    assert eager.summary["median_over_anchor"] == pytest.approx(9.5 / 10.5)
    assert eager.summary["gflops_per_s"] == pytest.approx(2 * TINY_MACS / 9.5)
    assert eager.summary["noisy"] and eager.warnings[0].startswith("noisy: IQR/median")

    assert len(written) == 2 and all(p.parent.parent == tmp_path / "results" for p in written)
    for record, path in zip(records, written, strict=True):
        back = load_record(path)
        assert back.to_dict() == record.to_dict()
        assert back.timing.anchor_ns == record.timing.anchor_ns
    assert sorted(p.name for p in written[0].parent.iterdir()) == sorted(p.name for p in written)


def test_without_out_dir_nothing_is_written(tiny, tmp_path):
    records = profile_models([tiny], [EAGER], runs=2, warmup=0, parts=fake_parts())
    assert len(records) == 1 and records[0].timing.warmup_ns == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nets.py"]


def test_old_records_without_the_new_timing_fields_still_load(tiny):
    (record,) = profile_models([tiny], [EAGER], runs=2, warmup=0, parts=fake_parts())
    data = json.loads(record.to_json())
    for key in ("anchor_ns", "anchor", "backend", "preparation", "wall_s"):
        del data["timing"][key]
    old = Record.from_dict(data)
    assert old.timing.anchor_ns == [] and old.timing.anchor == {} and old.timing.wall_s is None


@pytest.mark.parametrize("threads", [1, 2])
def test_real_anchor_runs_at_the_configs_threads_and_is_described(tiny, threads):
    seen = []

    def watched(device, threads=None):
        anchor = anchor_mod.make_anchor(device, threads)
        run = anchor.fn
        anchor.fn = lambda: seen.append(torch.get_num_threads()) or run()
        return anchor

    config = RunConfig.preset("eager", threads=threads)
    before = torch.get_num_threads()
    parts = replace(REAL, make_anchor=watched)
    (record,) = profile_models([tiny], [config], runs=3, warmup=1, parts=parts)
    assert seen == [threads] * 4
    assert record.timing.backend["threads"] == threads
    assert record.env["threads"]["torch_num_threads"] == threads
    info = record.timing.anchor
    assert (info["name"], info["version"], info["threads"]) == ("mobile", 2, threads)
    assert info["macs_per_image"] == 49_289_344 and info["batch_size"] == 1
    assert len(record.timing.anchor_ns) == 3
    assert torch.get_num_threads() == before  # global state restored


def test_anchor_macs_are_what_the_counters_count():
    net = anchor_mod.mobile_network().eval()
    counts = count_model(net, (1, *anchor_mod.CPU_INPUT_CHW), counters=("fvcore", "thop"))
    assert counts.conv_linear_macs == {"fvcore": anchor_mod.CPU_MACS, "thop": anchor_mod.CPU_MACS}
    assert counts.params_total == 581_432
    conv4 = anchor_mod.conv4_network().eval()
    counts = count_model(conv4, (1, *anchor_mod.CUDA_INPUT_CHW), counters=("fvcore",))
    assert (
        counts.conv_linear_macs == {"fvcore": anchor_mod.CUDA_MACS}
        and anchor_mod.CUDA_MACS == 36_227_072
    )


def test_each_config_runs_with_its_own_threads(tiny):
    seen: dict[str, list[int]] = {}
    real = REAL.prepare

    def recording(model, config, default_resolution=224, *, input_shape=None, **kwargs):
        prepared = real(model, config, input_shape=input_shape, **kwargs)
        module = prepared.module

        def forward(x):
            seen.setdefault(config.label + str(config.threads), []).append(torch.get_num_threads())
            return module(x)

        prepared.module = forward
        return prepared

    configs = [RunConfig.preset("eager", threads=1), RunConfig.preset("eager", threads=2)]
    parts = replace(fake_parts(), prepare=recording)
    records = profile_models([tiny], configs, runs=4, warmup=1, round_size=1, parts=parts)
    # one output check, one warm-up and four timed calls, each under its config's threads
    assert seen == {"eager1": [1] * 6, "eager2": [2] * 6}
    assert [r.timing.backend["threads"] for r in records] == [1, 2]
    assert records[0].run.config_id != records[1].run.config_id


def test_references_come_before_any_copy_and_the_last_config_takes_the_model(tiny):
    """The heap order of rexbench.measure.run.profile._prepare_model: eager references first (their
    model copies freed before the prepared copies are made), the built model itself prepared last."""
    calls: list[tuple[str, object]] = []
    real_reference, real_prepare = REAL.reference_output, REAL.prepare

    def reference(model, config, shape):
        calls.append(("reference", model))
        return real_reference(model, config, shape)

    def recording(model, config, default_resolution=224, *, input_shape=None, **kwargs):
        prepared = real_prepare(model, config, input_shape=input_shape, **kwargs)
        calls.append(("prepare", prepared.module is model))
        return prepared

    parts = replace(fake_parts(), reference_output=reference, prepare=recording)
    records = profile_models([tiny], [EAGER, CL], runs=2, warmup=1, parts=parts)
    assert [c[0] for c in calls] == ["reference", "prepare", "prepare"]  # one shape, one batch
    assert [c[1] for c in calls[1:]] == [False, True]  # a copy for eager, the model for the last
    assert all(r.parity["valid"] for r in records)


def test_a_reference_that_fails_fails_every_config_that_needs_it(tiny):
    def broken(model, config, shape):
        raise RuntimeError("eager forward failed\nsecond line")

    failures = []
    parts = replace(fake_parts(), reference_output=broken)
    records = profile_models(
        [tiny], [EAGER, CL], runs=2, warmup=1, parts=parts, on_failure=failures.append
    )
    assert records == []
    assert [f.line for f in failures] == [
        f"{tiny} {label}: {label} failed on its first output check: RuntimeError: eager forward failed"
        for label in ("eager", "channels_last")
    ]


def test_progress_events_in_order(tiny):
    events: list[ProfileEvent] = []
    profile_models(
        [tiny], [EAGER, CL], runs=2, warmup=1, parts=fake_parts(), progress=events.append
    )
    phases = [(e.phase, e.item) for e in events]
    assert phases[:4] == [
        ("build", None),
        ("count", "3x16x16"),
        ("prepare", "eager"),
        ("prepare", "channels_last"),
    ]
    assert ("warmup", "anchor:fake") in phases and ("timing", "channels_last") in phases
    assert phases[-2:] == [("record", "eager"), ("record", "channels_last")]


def test_ctrl_c_keeps_finished_models_and_leaves_no_partial_file(tiny, tmp_path):
    out = tmp_path / "results"

    def interrupt_second_model(event: ProfileEvent) -> None:
        if event.model == "py:nets.py:Tiny?num_classes=3" and event.phase == "timing":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        profile_models(
            [tiny, "py:nets.py:Tiny?num_classes=3"],
            [EAGER, CL],
            runs=4,
            warmup=1,
            out_dir=out,
            parts=fake_parts(),
            progress=interrupt_second_model,
        )
    files = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert len(files) == 2 and all(f.startswith("py_nets.py_tiny-") for f in files)
    kept = load_records(out)
    assert {r.model.spec for r in kept} == {tiny}
    assert all(len(r.timing.samples_ns) == 4 for r in kept)


def test_ctrl_c_while_writing_leaves_the_finished_file_and_no_temporary(
    tiny, tmp_path, monkeypatch
):
    import rexbench.records.store as store

    calls = []
    real_fsync = store.os.fsync

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(store.os, "fsync", fsync)
    out = tmp_path / "results"
    with pytest.raises(KeyboardInterrupt):
        profile_models([tiny], [EAGER, CL], runs=2, warmup=0, out_dir=out, parts=fake_parts())
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) == 1 and "__eager__" in files[0].name
    assert load_record(files[0]).run.label == "eager"


def test_input_shape_goes_into_the_config_and_the_counts(tiny):
    (record,) = profile_models(
        [tiny], [EAGER], runs=1, warmup=0, parts=fake_parts(), input_shape="3x16x24"
    )
    assert record.run.config["input_shape"] == [3, 16, 24]  # a JSON list, as read back
    assert record.counts["input_shape"] == [1, 3, 16, 24]
    assert record.counts["macs_conv"] == 16 * 24 * 4 * 27 + 8
    assert record.run.config_id != EAGER.config_id


def test_duplicate_configs_are_measured_once(tiny):
    records = profile_models([tiny], [EAGER, EAGER, CL], runs=1, warmup=0, parts=fake_parts())
    assert [r.run.label for r in records] == ["eager", "channels_last"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"configs": []}, "no configuration"),
        ({"specs": []}, "no model given"),
        ({"configs": [EAGER, RunConfig.preset("eager", device="cuda")]}, "several devices"),
        (
            {"configs": [EAGER, RunConfig.preset("channels_last", runs=5)], "runs": None},
            "disagree on runs",
        ),
        ({"weights": "w.pth", "specs": ["rexnet_x1.0", "rexnet_x2.0"]}, "exactly one model"),
        (
            {"configs": [RunConfig.preset("eager", resolution=16)], "input_shape": (3, 20, 20)},
            "disagree",
        ),
        (
            {"configs": [RunConfig.preset("eager", resolution=8)], "specs": ["rexnet_x1.0"]},
            "between 32",
        ),
        ({"configs": [RunConfig.preset("eager", device="cuda")]}, "CUDA is not available"),
        ({"specs": ["rexnet_x9.9"]}, "rexnet"),
    ],
)
def test_bad_input_is_one_rexbench_error(tiny, kwargs, message):
    args = {"specs": [tiny], "configs": [EAGER], "runs": 1, "warmup": 0, "parts": fake_parts()}
    args.update(kwargs)
    specs, configs = args.pop("specs"), args.pop("configs")
    with pytest.raises(RexbenchError, match=message):
        profile_models(specs, configs, **args)


def test_a_model_that_cannot_take_the_input_is_one_line(tiny):
    with pytest.raises(RexbenchError, match="could not run py:nets.py:Tiny on input 1x16x16"):
        profile_models([tiny], [EAGER], runs=1, warmup=0, parts=fake_parts(), input_shape="1x16x16")


def test_cpu_out_of_memory_gives_retry_advice(tiny):
    config = RunConfig.preset("eager", batch_size=8)
    with pytest.raises(RexbenchError, match=r"out of memory on cpu .* --batch-size 4"):
        profile_models(["py:nets.py:Hungry"], [config], runs=2, warmup=1, parts=fake_parts())


def test_unwritable_out_dir_fails_before_measuring(tiny, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    events = []
    with pytest.raises(RexbenchError, match="cannot write records to .*choose a writable folder"):
        profile_models(
            [tiny], [EAGER], runs=1, warmup=0, out_dir=blocker / "results", progress=events.append
        )
    assert events == []


def test_cuda_path_with_a_fake_device(tiny, monkeypatch):
    ops = FakeCudaOps()
    parts = fake_cuda(monkeypatch, ops)
    config = RunConfig.preset("eager", device="cuda")
    assert config.batch_size == 64 and config.allow_tf32 is False
    (record,) = profile_models([tiny], [config], runs=2, warmup=1, round_size=1, parts=parts)
    # every timed call: synchronize (queue empty), record start, call, record end, synchronize,
    # then elapsed_time; warm-up wrapped in the peak-memory reset and read. The one call before
    # them all is the output check of the prepared model.
    one = ["synchronize", "record", "call", "record", "synchronize", "elapsed"]
    assert ops.log == ["call"] + ["reset_peak", *one, "max_allocated"] * 2 + one * 4
    assert record.parity["valid"] and record.parity["rel_l2"] == 0.0
    assert record.timing.clock == "cuda_event"
    assert (
        record.timing.samples_ns == [2_000_000] * 2 and record.timing.anchor_ns == [2_000_000] * 2
    )
    assert record.timing.peak_memory_bytes == 7_000_000
    assert record.timing.peak_memory_kind == "cuda_max_allocated"
    assert record.run.config["batch_size"] == 64 and record.run.config["allow_tf32"] is False
    assert record.timing.backend["cudnn_allow_tf32"] is False
    assert record.timing.backend["matmul_allow_tf32"] is False
    assert record.timing.backend["cudnn_benchmark"] is True
    assert record.timing.preparation["device"] == "cuda:0"
    assert "gpus" in record.timing.device_start  # NVML snapshot (no GPU: empty with a reason)
    assert record.counts["input_shape"] == [1, 3, 16, 16]
    assert record.summary["throughput"] == pytest.approx(64 / 2e-3)


def test_one_real_torch_compile_with_freezing_on_a_tiny_model(tiny):
    """The only real compile in the suite (about 5-10 s): compile time is kept out of the samples."""
    (record,) = profile_models(
        [tiny], [RunConfig.preset("max")], runs=3, warmup=1, parts=fake_parts()
    )
    assert record.run.label == "max" and record.run.config["freezing"] is True
    assert isinstance(record.timing.compile_s, float) and record.timing.compile_s > 0
    assert len(record.timing.samples_ns) == 3 and len(record.timing.warmup_ns) == 1
    assert record.timing.preparation["fold_method"] == "torch.fx.experimental.optimization.fuse"
    assert record.timing.preparation["compile_s"] == record.timing.compile_s


def test_stalled_samples_are_counted_and_warned_about(tiny):
    # pair k lasts 10 ns, except pairs 4 and 5 (the first timed model calls) that stall at 1000 ns
    clock = ScriptedClock(lambda k: 1000 if k in (4, 5) else 10)
    (record,) = profile_models(
        [tiny], [EAGER], runs=100, warmup=1, round_size=100, parts=fake_parts(clock)
    )
    assert record.timing.samples_ns[:4] == [10, 10, 1000, 1000]
    assert record.summary["stalled_fraction"] == 0.02
    assert record.warnings[0].startswith("contended: 2.0% of the samples took over 3x the median")
    assert not record.summary["noisy"]


def test_models_measured_together_share_the_rounds_and_a_run_id(tiny):
    other = "py:nets.py:Tiny?num_classes=3"
    clock, events = ScriptedClock(), []
    records = profile_models(
        [tiny, other],
        [EAGER],
        runs=2,
        warmup=1,
        round_size=1,
        together=True,
        parts=fake_parts(clock),
        progress=events.append,
    )
    first, second = records
    assert (first.model.spec, second.model.spec) == (tiny, other)
    # warm-up: tiny, other, anchor (1 call each); round 0: tiny, other, anchor; round 1 starts
    # with the next runner: other, anchor, tiny
    assert first.timing.samples_ns == [4, 9] and second.timing.samples_ns == [5, 7]
    assert first.timing.anchor_ns == second.timing.anchor_ns == [6, 8]
    assert first.run_id == second.run_id and first.measured_with(second)
    assert first.valid and second.valid
    timed = {(e.model, e.item) for e in events if e.phase == "timing"}
    assert timed == {(tiny, "eager"), (other, "eager"), (f"{tiny}, {other}", "anchor:fake")}
    apart = profile_models([tiny, other], [EAGER], runs=2, warmup=0, parts=fake_parts())
    assert apart[0].run_id != apart[1].run_id
