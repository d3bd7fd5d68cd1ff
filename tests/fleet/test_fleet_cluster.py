"""A fleet sweep on a real two-node Ray cluster (ray.cluster_utils.Cluster, one CPU per node): the
nodes carry different labels and are named by REXBENCH_MACHINE_ID, as two machines would be."""

from __future__ import annotations

import json
import os
import threading

import pytest
from _fleet import TINY, fresh_threads

from rexbench.cli import run
from rexbench.records.store import load_records

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.slow  # a two-node cluster: 11 s to start, 3-14 s a test

LABEL = "rexbench-test"


def add_node(cluster: Cluster, name: str, **args):
    """A node whose processes see REXBENCH_MACHINE_ID=name (they inherit this environment)."""
    os.environ["REXBENCH_MACHINE_ID"] = name
    try:
        return cluster.add_node(num_cpus=1, labels={LABEL: name}, **args)
    finally:
        del os.environ["REXBENCH_MACHINE_ID"]


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster()
    add_node(cluster, "node-a", include_dashboard=False)
    add_node(cluster, "node-b")
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def sweep(capsys, *args: str) -> tuple[int, dict, str]:
    code = run(["sweep", *args, *TINY, "--cluster", "auto", "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out or "{}"), captured.err


def by_node(data: dict) -> dict[str, dict]:
    return {n["machine_id"]: n for n in data["nodes"]}


def test_each_node_measures_and_its_records_land_in_its_folder_then_a_rerun_skips(
    cluster, nets, tmp_path, capsys
) -> None:
    out = tmp_path / "results"
    code, data, err = sweep(capsys, nets["build"], "--out", str(out))
    assert code == 0, err
    nodes = by_node(data)
    assert sorted(nodes) == ["node-a", "node-b"]
    for name, node in nodes.items():
        assert node["labels"][LABEL] == name and node["failed"] == [] and node["lost"] is None
        (path,) = (out / name).glob("*.json")
        assert [m["record"] for m in node["measured"]] == [str(path)]
    records = load_records(out)
    threads = fresh_threads()  # the nodes run in this environment: a local run's default
    for record in records:
        assert record.env["threads"]["torch_num_threads"] == threads
        # each configuration's worker process starts with its thread count in its environment
        assert record.env["threads"]["env"]["OMP_NUM_THREADS"] == str(threads)
        assert record.env["worker"]["threads"] == threads
        assert record.env["hardware_id"] != record.machine_id
    assert "next: rexbench report" in err

    code, data, err = sweep(capsys, nets["build"], "--out", str(out))
    assert code == 0, err
    for node in by_node(data).values():
        assert node["measured"] == [] and [s["model"] for s in node["skipped"]] == [nets["build"]]

    assert run(["report", str(out), "--json"]) == 0
    # the hardware comparison of both nodes, with no other step
    report = json.dumps(json.loads(capsys.readouterr().out))
    assert "Latency per machine" in report and "node-a" in report and "node-b" in report


def test_labels_pick_the_nodes(cluster, nets, tmp_path, capsys) -> None:
    out = tmp_path / "results"
    code, data, err = sweep(capsys, nets["build"], "--out", str(out), "--nodes", f"{LABEL}=node-b")
    assert code == 0, err
    assert list(by_node(data)) == ["node-b"] and [p.name for p in out.iterdir()] == ["node-b"]

    code = run(["sweep", nets["build"], "--cluster", "auto", "--nodes", f"{LABEL}=node-z"])
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("rexbench: error:")]
    assert code == 2 and "node-z" in line and f"{LABEL}=node-a" in line, err


def test_a_failing_model_fails_alone_with_one_line_per_failure(
    cluster, nets, tmp_path, capsys
) -> None:
    out = tmp_path / "results"
    code, data, err = sweep(capsys, nets["broken"], nets["build"], "--out", str(out))
    assert code == 1
    for name, node in by_node(data).items():
        assert [f["model"] for f in node["failed"]] == [nets["broken"]]
        assert [m["model"] for m in node["measured"]] == [nets["build"]]
        assert len(list((out / name).glob("*.json"))) == 1
    failed = [ln for ln in err.splitlines() if ln.startswith("failed:")]
    assert len(failed) == 2 and all("width must be positive" in ln for ln in failed), err


def test_a_removed_node_loses_only_its_running_model(cluster, nets, tmp_path) -> None:
    from rexbench.fleet import cluster as fc
    from rexbench.fleet import sweep as fs
    from rexbench.measure.config import RunConfig

    node_c = add_node(cluster, "node-c")
    removed = []

    class RemoveNodeC(fs.Hooks):
        def event(self, run, event) -> None:
            if run.machine_id == "node-c" and event.phase == "build" and not removed:
                # node c is building its slow model (2.5 s): remove the node meanwhile
                removed.append(threading.Timer(0.2, cluster.remove_node, (node_c,)))
                removed[0].start()

    out = tmp_path / "results"
    specs = [nets["slow"], nets["build"]]
    config = RunConfig(compile=False, channels_last=False, runs=5, warmup=1)
    result = fs.run_fleet(ray, fc.alive_nodes(ray), specs, [config], out=out, hooks=RemoveNodeC())
    removed[0].join()
    runs = {r.machine_id: r for r in result.runs}
    assert sorted(runs) == ["node-a", "node-b", "node-c"]
    lost = runs["node-c"]
    assert lost.lost and [m for m, _ in lost.result.failed] == [nets["slow"]]
    assert lost.unmeasured == [nets["build"]] and not list((out / "node-c").glob("*.json"))
    for name in ("node-a", "node-b"):
        assert runs[name].lost is None and len(runs[name].result.paths) == 2
        assert len(list((out / name).glob("*.json"))) == 2
