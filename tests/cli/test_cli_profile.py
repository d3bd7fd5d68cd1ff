"""`rexbench profile` end to end through `rexbench.cli.run`: exit codes, one-line errors, --json, records."""

from __future__ import annotations

import json

import pytest
from _profile_fakes import TINY_MACS, TINY_PARAMS, FakeCudaOps, fake_cuda, write_tiny

from rexbench.cli import run
from rexbench.cli.profile import table_data
from rexbench.measure.config import ConfigOptions, build_configs
from rexbench.records.store import load_record, load_records

FAST = ["--runs", "3", "--warmup", "1", "--no-compile"]


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """cwd = tmp_path with nets.py (the real anchor: a few calls of a few milliseconds each)."""
    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    return "py:nets.py:Tiny"


def one_error_line(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("rexbench: error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_json_is_the_table_data_and_the_records_are_written(tiny, tmp_path, capsys):
    out = tmp_path / "res"
    code = run(
        [
            "profile",
            tiny,
            "--config",
            "eager,channels_last",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--out",
            str(out),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)  # nothing but JSON on stdout
    rows = data["rows"]
    assert [(r["model"], r["config"], r["batch"]) for r in rows] == [
        (tiny, "eager", 1),
        (tiny, "channels_last", 1),
    ]
    assert rows[0]["params"] == TINY_PARAMS and rows[0]["macs_conv"] == TINY_MACS
    assert rows[0]["speedup"] == 1.0
    assert rows[1]["speedup"] == pytest.approx(rows[0]["median_ms"] / rows[1]["median_ms"])
    assert rows[0]["gflops_per_s"] == pytest.approx(2 * TINY_MACS / (rows[0]["median_ms"] * 1e6))
    paths = [r["record"] for r in rows]
    records = [load_record(p) for p in paths]
    assert all(len(r.timing.samples_ns) == 3 and len(r.timing.anchor_ns) == 3 for r in records)
    # the same data the table is drawn from, recomputed from the records on disk
    again = table_data(records, paths, data["note"])
    assert json.loads(json.dumps(again)) == data
    assert "configurations eager, channels_last (measured interleaved)" in data["note"]
    assert data["note"].endswith("; steady allocator, a worker process per configuration")
    assert captured.err == ""  # --json: the note is in the data; stderr stays quiet


def test_table_shows_the_rows(tiny, tmp_path, capsys):
    code = run(["profile", tiny, *FAST, "--out", str(tmp_path / "res")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (record,) = load_records(tmp_path / "res")
    median = f"{record.summary['median'] / 1e6:.3f}"
    for text in ("rexbench profile", "py:nets.py:Tiny", "channels_last", median, "macs_conv"):
        assert text in captured.out
    assert "speedup" not in captured.out  # one configuration: nothing to compare with
    assert "eager (no torch.compile) + channels-last" in captured.err
    assert "1 record(s) written" in captured.err


def test_default_configuration_is_compile_and_channels_last_and_says_so():
    configs, note = build_configs(ConfigOptions(runs=10, warmup=2))
    (config,) = configs
    assert config.compile and config.channels_last and config.label == "compile_cl"
    assert config.batch_size == 1 and config.runs == 10 and config.warmup == 2
    assert note.startswith("configuration compile_cl: torch.compile + channels-last (the default")
    cuda, note = build_configs(
        ConfigOptions(
            device="cuda:1",
            runs=10,
            warmup=2,
            dtype="fp16",
            compile_mode="max-autotune",
            names=["eager, max"],
        )
    )
    assert [c.label for c in cuda] == [
        "eager+fp16",
        "fold_bn+cl+compile:max-autotune+freezing+fp16",
    ]
    assert all(c.batch_size == 64 and c.device == "cuda:1" for c in cuda)
    assert "batch 64 on cuda:1" in note


def test_cuda_default_batch_is_64_and_tf32_is_recorded_off(tiny, tmp_path, monkeypatch, capsys):
    ops = FakeCudaOps()
    args = ["profile", tiny, "--device", "cuda", *FAST, "--out", str(tmp_path / "r"), "--json"]
    code = run(args, parts=fake_cuda(monkeypatch, ops))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (row,) = json.loads(captured.out)["rows"]
    assert row["batch"] == 64 and row["device"] == "cuda"
    assert row["median_ms"] == 2.0 and row["throughput"] == pytest.approx(32_000)
    record = load_record(row["record"])
    assert record.timing.clock == "cuda_event"
    assert record.run.config["allow_tf32"] is False
    assert record.timing.backend["cudnn_allow_tf32"] is False
    assert record.timing.backend["matmul_allow_tf32"] is False
    # model and anchor: 1 warm-up + 3 timed calls each, and the model's output check before them
    assert ops.log.count("call") == 2 * (1 + 3) + 1


def test_ctrl_c_exits_130_and_keeps_the_finished_records(tiny, tmp_path, monkeypatch, capsys):
    import rexbench.measure.run.rounds as rounds

    real = rounds.measure_interleaved
    calls = []

    def interrupted_second_time(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(rounds, "measure_interleaved", interrupted_second_time)
    out = tmp_path / "res"
    code = run(
        [
            "profile",
            tiny,
            "py:nets.py:Tiny?num_classes=3",
            "-c",
            "eager",
            "-c",
            "channels_last",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 130, err
    assert "interrupted: 2 finished record(s) kept" in err and "Traceback" not in err
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) == 2 and not any(p.name.startswith(".") for p in files)
    assert {r.model.spec for r in load_records(out)} == {tiny}


def test_cuda_without_cuda(tiny, capsys):
    code = run(["profile", tiny, "--device", "cuda", *FAST])
    one_error_line(capsys, code, "CUDA is not available", "--device cpu")


def test_unknown_device(tiny, capsys):
    code = run(["profile", tiny, "--device", "tpu", *FAST])
    one_error_line(capsys, code, "unknown device 'tpu'")


def test_dtype_the_device_cannot_run(tiny, monkeypatch, capsys):
    import rexbench.measure.backends.inputs as inputs

    monkeypatch.setattr(inputs, "_cpu_supports", lambda dtype: False)
    code = run(["profile", tiny, "--dtype", "bf16", *FAST])
    one_error_line(capsys, code, "bf16 is not supported on this CPU", "--dtype fp32")


def test_out_of_memory_batch(tiny, capsys):
    code = run(["profile", "py:nets.py:Hungry", "--batch-size", "16", *FAST, "--out", "r"])
    one_error_line(
        capsys,
        code,
        "out of memory on cpu",
        "retry with a smaller --batch-size (e.g. --batch-size 8)",
    )


def test_unwritable_out(tiny, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code = run(["profile", tiny, *FAST, "--out", str(tmp_path / "file" / "results")])
    one_error_line(capsys, code, "cannot write records to", "--out")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["rexnet_x9.9"], "rexnet"),
        (["nosuchmodel_at_all"], "nosuchmodel_at_all"),
        (["rexnet_x1.0", "--resolution", "8"], "resolution must be between 32"),
        (["rexnet_x1.0", "--resolution", "0"], "resolution must be a positive integer"),
        (["rexnet_x1.0", "--input-shape", "3x0x9"], "--input-shape"),
        (["rexnet_x1.0", "--input-shape", "3x64x64", "--resolution", "96"], "disagree"),
        (["rexnet_x1.0", "--batch-size", "0"], "batch_size must be an integer >= 1"),
        (["rexnet_x1.0", "--runs", "0"], "runs must be an integer >= 1"),
        (["rexnet_x1.0", "--config", "turbo"], "unknown configuration 'turbo'"),
        (
            ["rexnet_x1.0", "--config", "max", "--channels-last"],
            "--config names whole configurations",
        ),
        (
            ["rexnet_x1.0", "--compile-mode", "max-autotune"],
            "--compile-mode needs a compiled configuration",
        ),
        (["rexnet_x1.0", "rexnet_x2.0", "--weights", "w.pth"], "exactly one model"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny, capsys, args, needle):
    extra = [] if "--config" in args else ["--no-compile"]
    if "--compile-mode" in args:
        extra = ["--no-compile"]
    code = run(
        ["profile", *args, "--runs", "3", *extra]
        if "--runs" not in args
        else ["profile", *args, *extra]
    )
    one_error_line(capsys, code, needle)


def test_usage_errors_exit_2(tiny, capsys):
    assert run(["profile", tiny, "--dtype", "fp8"]) == 2
    assert "fp8" in capsys.readouterr().err


@pytest.mark.slow
def test_profiling_again_keeps_the_earlier_record_byte_identical(tiny, tmp_path, capsys):
    """The same model and configuration profiled twice into one folder: the first file is left as
    it was, the second run's record is a new file beside it, and the command says so."""
    out = tmp_path / "res"
    args = ["profile", tiny, "--config", "eager", *FAST[:4], "--out", str(out)]
    assert run(args) == 0, capsys.readouterr().err
    (first,) = out.glob("*/*.json")
    before = first.read_bytes()
    capsys.readouterr()
    assert run(args) == 0
    err = capsys.readouterr().err
    assert "1 of them beside an earlier record of the same model and configuration" in err
    assert first.read_bytes() == before
    second = first.with_name(f"{first.stem}__2.json")
    assert sorted(out.glob("*/*.json")) == [first, second]
    assert load_record(second).created > load_record(first).created
    assert run([*args, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["beside_earlier"] and row["record"] == str(first.with_name(f"{first.stem}__3.json"))
