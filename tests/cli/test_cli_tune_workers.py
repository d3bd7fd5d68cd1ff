"""`rexbench tune` as a user runs it, in a process of its own with a worker process per candidate,
on a tiny `py:` model: the deploy snippet judged against rexbench's own calls of the winner, timed
in a worker in turns with the snippet's; the finalists' graphs from the search's cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _tune_nets import WIDE, write_wide

from rexbench.tune.verify import PARTS

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
    assert snippet["error"] is None and snippet["no_turns"] is None, snippet
    assert snippet["tune_ms"] == winner["median_ms"]
    # rexbench's worker timed it in turns with the snippet's parts, and once after the last
    assert snippet["turns"] == PARTS + 1 and snippet["rexbench_ms"] > 0
    assert snippet["side_by_side"] == pytest.approx(snippet["median_ms"] / snippet["rexbench_ms"])
    assert snippet["within"] == (abs(snippet["side_by_side"] - 1) <= 0.05)
    line = next(n for n in data["notes"] if n.startswith("deploy snippet"))
    assert f"in turns with the snippet ({PARTS + 1} turns): {snippet['rexbench_ms']:.3f} ms" in line
    # ort was prepared in the screen, then again as a finalist: from the search's cache of graphs
    records = {
        Path(p).name.split("__")[1]: json.loads((tmp_path / p).read_text()) for p in data["records"]
    }
    runtime = records["ort"]["timing"]["preparation"]["runtime"]
    assert runtime["artifact"].startswith("reused from this run's cache of built graphs")
    assert "export_s" in runtime and runtime["exporter"] in ("legacy", "dynamo")
