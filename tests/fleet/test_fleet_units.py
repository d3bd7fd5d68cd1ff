"""The fleet's pieces that need no cluster: node selection by labels, addresses, the node's thread
environment, progress throttling, the summary table and failure lines."""

from __future__ import annotations

import logging

import pytest
from _synthetic import make

from rexbench.cli.fleet_view import failure_lines, results_tables, summary_table
from rexbench.cli.tables import render_plain
from rexbench.errors import RexbenchError
from rexbench.fleet import remote
from rexbench.fleet.cluster import (
    AUTH_LOGGER,
    Node,
    _split_address,
    _without_default_auth_notice,
    parse_selector,
    select,
)
from rexbench.fleet.sweep import FleetResult, NodeRun, _notes
from rexbench.measure.run.rounds import ProfileEvent
from rexbench.measure.run.sweep import PlanItem

A100 = Node("a" * 40, "10.0.0.1", "gpu-1", {"gpu": "a100", "rack": "1"}, cpus=32, gpus=8)
CPU = Node("b" * 40, "10.0.0.2", "cpu-1", {"rack": "1"}, cpus=16)
HEAD = Node("c" * 40, "10.0.0.3", "head", {"gpu": "a100"}, cpus=0)


def test_labels_select_nodes_with_cpus_and_say_which_labels_exist() -> None:
    assert parse_selector(["gpu=a100,rack=1", " zone = b "]) == {
        "gpu": "a100",
        "rack": "1",
        "zone": "b",
    }
    assert select([A100, CPU, HEAD], {}) == [A100, CPU]  # a head without CPUs runs nothing
    assert select([A100, CPU, HEAD], parse_selector(["gpu=a100"])) == [A100]
    assert select([A100, CPU], {"rack": "1"}) == [A100, CPU]
    with pytest.raises(RexbenchError, match=r"gpu=h100: no node .* gpu=a100, rack=1"):
        select([A100, CPU], {"gpu": "h100"})
    for bad in ("gpu", "=a100", "gpu="):
        with pytest.raises(RexbenchError, match="expected KEY=VALUE"):
            parse_selector([bad])
    assert A100.name == "gpu-1:aaaaaa"


def test_addresses() -> None:
    assert _split_address("10.0.0.1:6379") == ("10.0.0.1", 6379)
    assert _split_address("ray://head:10001") == ("head", 10001)
    assert _split_address("[::1]:6379") == ("::1", 6379)
    for bad in ("head", "head:port", ":6379"):
        with pytest.raises(RexbenchError, match="expected auto, local, HOST:PORT"):
            _split_address(bad)


def test_node_environment_restores_the_start_environment(monkeypatch) -> None:
    monkeypatch.setattr(remote, "startup_environ", lambda: {"MKL_NUM_THREADS": "4"})
    monkeypatch.setenv("OMP_NUM_THREADS", "32")  # as Ray sets it for a task holding 32 CPUs
    monkeypatch.setenv("MKL_NUM_THREADS", "4")
    import os

    with remote.node_environment():
        assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "4"
    assert os.environ["OMP_NUM_THREADS"] == "32"  # Ray's own value once the block ends


def test_startup_environ_reads_this_process() -> None:
    start = remote.startup_environ()
    if start is None:
        pytest.skip("no /proc/self/environ here")
    assert start.get("PATH") is not None


def test_progress_is_throttled_and_never_fails_the_measurement(monkeypatch) -> None:
    sent = []

    class Queue:
        def put_nowait(self, item):
            sent.append(item)
            if len(sent) == 3:
                raise ConnectionError("the queue's node is gone")

    clock = iter([0.0, 0.1, 0.2, 5.0, 9.0, 9.1])
    monkeypatch.setattr(remote.time, "monotonic", lambda: next(clock))
    send = remote.ProgressSender(Queue(), "node")
    send(ProfileEvent("build", "m"))  # phase change: sent
    send(ProfileEvent("timing", "m", "eager", 1, 9))  # within the interval: dropped
    send(ProfileEvent("count", "m"))  # phase change: sent
    send(ProfileEvent("timing", "m", "eager", 5, 9))  # sent, and the queue fails
    send(ProfileEvent("record", "m"))  # the sender has given up: nothing, no error
    assert [e.phase for _, e in sent] == ["build", "count", "timing"]


def _run(node: Node, machine: str, **fields) -> NodeRun:
    run = NodeRun(node, info={"machine_id": machine, "rexbench": "0.1.0"}, **fields)
    return run


def test_summary_and_one_line_per_failure() -> None:
    done = _run(A100, "gpu-box")
    done.result.skipped = [
        PlanItem(
            "rexnet_x1.0",
            [],
            done=[make("rexnet_x1.0", machine="gpu-box"), make("rexnet_x1.0", preset="max")],
        )
    ]
    done.result.failed = [("py:nets.py:broken", "ValueError: width must be positive")]
    lost = _run(CPU, "cpu-box", lost="NodeDiedError: the node died")
    lost.result.failed = [("rexnet_x2.0", "NodeDiedError: the node died")]
    lost.unmeasured = ["efficientnet_b3"]
    result = FleetResult([done, lost])
    lines = failure_lines(result)
    assert lines == [
        "failed: gpu-1:aaaaaa (gpu-box): py:nets.py:broken: ValueError: width must be positive",
        "failed: cpu-1:bbbbbb (cpu-box): rexnet_x2.0: NodeDiedError: the node died",
        "not measured on cpu-box: efficientnet_b3 (no node of it left; run the same command "
        "again to resume)",
    ]
    rows = [[cell for cell in col.cells] for col in summary_table(result).columns]
    assert list(zip(*rows, strict=True)) == [
        ("gpu-1:aaaaaa", "gpu-box", "0", "2", "1", "done"),
        ("cpu-1:bbbbbb", "cpu-box", "0", "0", "1", "lost"),
    ]
    assert result.failed and result.to_dict()["nodes"][1]["unmeasured"] == ["efficientnet_b3"]


def test_each_node_has_a_table_with_the_median_of_every_record() -> None:
    """As a local sweep prints them (`sweep --cluster local` showed no median)."""
    measured, kept = make("rexnet_x1.0", 12.5, machine="gpu-box"), make("mobilenet_v2", 3.25)
    done = _run(A100, "gpu-box")
    done.result.records, done.result.paths = [measured], []
    done.result.skipped = [PlanItem("mobilenet_v2", [], done=[kept])]
    done.result.failed = [("py:nets.py:broken", "ValueError: width must be positive")]
    idle = _run(CPU, "cpu-box")  # nothing measured, kept or failed: no table
    (table,) = results_tables(FleetResult([done, idle]))
    rows = list(zip(*[[str(c) for c in col.cells] for col in table.columns], strict=True))
    assert table.title == "gpu-1:aaaaaa (gpu-box)"
    assert rows == [
        ("rexnet_x1.0", "eager", f"{measured.latency.median_ms:.3f}", "measured"),
        ("mobilenet_v2", "eager", f"{kept.latency.median_ms:.3f}", "skipped"),
        ("py:nets.py:broken", "-", "-", "failed"),
    ]
    assert abs(measured.latency.median_ms - 12.5) < 0.5
    assert "median ms" in render_plain(table, 80)


class Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_only_rays_notice_of_its_default_authentication_is_kept_off_stderr() -> None:
    log, seen = logging.getLogger(AUTH_LOGGER), Seen()
    log.addHandler(seen)
    try:
        with _without_default_auth_notice():
            log.warning("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE")
            log.warning("Token authentication is disabled for this Ray cluster. Anyone with")
        log.warning("Token authentication is enabled for this Ray cluster (after the start)")
    finally:
        log.removeHandler(seen)
    assert seen.messages == [
        "Token authentication is disabled for this Ray cluster. Anyone with",
        "Token authentication is enabled for this Ray cluster (after the start)",
    ]


def test_notes_name_nodes_of_one_machine_and_other_versions() -> None:
    twin = Node("d" * 40, "10.0.0.4", "cpu-2", {}, cpus=16)
    runs = [_run(CPU, "cpu-box"), _run(twin, "cpu-box")]
    runs[1].info["rexbench"] = "0.0.9"
    notes = _notes(runs)
    assert "cpu-1:bbbbbb, cpu-2:dddddd are the same hardware (cpu-box)" in notes[0]
    assert "REXBENCH_MACHINE_ID" in notes[0] and "cpu-2:dddddd runs rexbench 0.0.9" in notes[1]


def test_a_node_without_the_device_says_so_for_the_whole_node() -> None:
    import torch

    from rexbench.measure.config import RunConfig

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    answer = remote.measure("rexnet_x1.0", [RunConfig(device="cuda")], {})
    assert answer["node"] is True and "cuda" in answer["error"].lower()
