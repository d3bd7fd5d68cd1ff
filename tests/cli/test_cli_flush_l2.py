"""`rexbench profile --flush-l2` (CUDA only): recorded in the configuration and the record's validity;
one line and exit 2 on a CPU. A fake GPU and a fake flush (tests/_profile_fakes.py)."""

from __future__ import annotations

import json
from dataclasses import replace

from _profile_fakes import FakeCudaOps, fake_cuda, write_tiny

from rexbench.cli import run
from rexbench.records.store import load_record

FAST = ["--runs", "3", "--warmup", "1", "--no-compile"]


def test_flush_l2_on_a_fake_gpu(tmp_path, monkeypatch, capsys):
    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    ops = FakeCudaOps()

    def fake_flusher(device, nbytes=None):
        def flush():
            ops.log.append("flush")

        flush.info = {"bytes": 1024, "l2_bytes": None}
        return flush

    parts = replace(fake_cuda(monkeypatch, ops), make_flusher=fake_flusher)
    args = ["profile", "py:nets.py:Tiny", "--device", "cuda", "--flush-l2", *FAST]
    code = run([*args, "--out", str(tmp_path / "r"), "--json"], parts=parts)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (row,) = json.loads(captured.out)["rows"]
    record = load_record(row["record"])
    assert record.run.config["flush_l2"] is True
    assert record.timing.validity["l2_flush"] == {"bytes": 1024, "l2_bytes": None}
    assert ops.log.count("flush") == 1 + 3  # the model's warm-up and timed calls, not the anchor's


def test_flush_l2_on_the_cpu_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run(["profile", "rexnet_x1.0", "--flush-l2", *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("rexbench: error:") == 1 and "needs --device cuda" in err
