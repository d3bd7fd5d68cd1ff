"""`rexbench tune` as a user runs it, in a process of its own with a worker process per candidate,
on a tiny `py:` model: the deploy snippet judged against rexbench's plain loops of the winner,
timed in a worker right before and right after the snippet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _tune_nets import WIDE, write_wide

SPACE = ["--config", "eager,ort", "--threads", "1", "--allocator", "steady", "--dtype", "fp32"]


@pytest.mark.slow
def test_the_snippet_is_checked_against_the_winner_timed_again_around_it(
    tmp_path: Path,
) -> None:
    write_wide(tmp_path)
    command = [sys.executable, "-m", "rexbench", "tune", WIDE, *SPACE]
    command += ["--budget", "2m", "--runs", "100", "--out", "res", "--json"]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    snippet, winner = data["snippet"], data["recommendation"]
    assert snippet["error"] is None and snippet["unbracketed"] is None, snippet
    assert snippet["tune_ms"] == winner["median_ms"]
    before, after = snippet["rexbench_before_ms"], snippet["rexbench_after_ms"]
    assert before > 0 and after > 0
    assert snippet["bracketed"] == pytest.approx(snippet["median_ms"] / ((before + after) / 2))
    assert snippet["within"] == (abs(snippet["bracketed"] - 1) <= 0.05)
    line = next(n for n in data["notes"] if n.startswith("deploy snippet"))
    assert f"right before and after: {before:.3f} and {after:.3f} ms" in line
    # ort was prepared in the screen, then again as a finalist: from the search's cache of graphs
    records = {
        Path(p).name.split("__")[1]: json.loads((tmp_path / p).read_text()) for p in data["records"]
    }
    runtime = records["ort"]["timing"]["preparation"]["runtime"]
    assert runtime["artifact"].startswith("reused from this run's cache of built graphs")
    assert "export_s" in runtime and runtime["exporter"] in ("legacy", "dynamo")
