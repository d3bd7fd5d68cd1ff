"""rexbench.measure.machine.contention: parsers on synthetic /proc contents, chunk shares, run summaries,
the early stop; rexbench.measure.machine.allocator's policy."""

from __future__ import annotations

import ctypes
import os
import time

import pytest

from rexbench.measure.machine import allocator, contention
from rexbench.measure.machine.contention import Chunk, ChunkSampler, ContendedRun, Paths

PSI = "some avg10=5.54 avg60=9.32 avg300=26.09 total=321339141\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=17\n"
STAT = (
    "cpu  117750 54269 15261 103843 403 0 104 73 0 0\n"
    "cpu0 49818 22214 6163 67322 147 0 26 33 0 0\n"
    "intr 1 2 3\n"
)


def test_parsers_read_synthetic_files():
    assert contention.parse_psi(PSI) == (321339141, 17)
    assert contention.parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n") == (42, None)
    assert contention.parse_psi("garbage") == (None, None)
    # steal is the 8th value; total = the first 8 (guest time is already inside user)
    assert contention.parse_stat(STAT) == (73, 117750 + 54269 + 15261 + 103843 + 403 + 0 + 104 + 73)
    assert contention.parse_stat("cpu  1 2 3 4\n") == (None, 10)  # kernels without steal
    assert contention.parse_stat("intr 1\n") == (None, None)
    assert contention.parse_schedstat("521641815 10692196 52\n") == 10692196
    assert contention.parse_schedstat("521641815 10692196 52\n", 0) == 521641815  # CPU time
    assert contention.parse_schedstat("") is None
    # idle + iowait of the aggregate line, and one `cpuN` line
    assert contention.parse_stat_idle(STAT) == (103843 + 403, 1)
    assert contention.parse_stat_idle("intr 1\n") == (None, None)


@pytest.mark.real_counters
def test_read_counters_falls_back_cleanly_where_files_are_missing(tmp_path):
    tasks = tmp_path / "task"
    for tid, wait in (("1", 100), ("2", 250)):
        (tasks / tid).mkdir(parents=True)
        (tasks / tid / "schedstat").write_text(f"999 {wait} 3\n")
    (tmp_path / "psi").write_text(PSI)
    got = contention.read_counters(Paths(tmp_path / "psi", tmp_path / "nostat", tasks))
    assert got["psi_some_us"] == 321339141 and got["wait_ns"] == 350 and got["threads"] == 2
    assert got["run_ns"] == 2 * 999
    assert got["steal_ticks"] is None and got["total_ticks"] is None
    assert got["idle_ns"] is None and got["cpus"] is None
    (tmp_path / "stat").write_text(STAT)
    got = contention.read_counters(Paths(tmp_path / "psi", tmp_path / "stat", tasks))
    assert got["idle_ns"] == (103843 + 403) * 10**9 // os.sysconf("SC_CLK_TCK") and got["cpus"] == 1
    none = contention.read_counters(Paths(tmp_path / "a", tmp_path / "b", tmp_path / "c"))
    assert none["psi_some_us"] is None and none["wait_ns"] is None and none["threads"] is None


@pytest.mark.real_counters
def test_real_counters_on_this_machine_are_ints_or_none():
    got = contention.read_counters()
    assert all(v is None or (isinstance(v, int) and v >= 0) for v in got.values())


def test_chunk_shares_and_contended_flag():
    quiet = Chunk(
        0,
        "timing",
        10,
        100_000_000,
        psi_some_us=1_000,
        steal_ticks=0,
        total_ticks=20,
        wait_ns=1_000_000,
    )
    assert quiet.shares == {
        "psi": pytest.approx(0.01),
        "steal": 0.0,
        "wait": pytest.approx(0.01),
        "others": None,  # neither the machine's idle time nor ours: not known
    }
    assert not quiet.contended
    assert Chunk(0, "timing", 10, 100_000_000, wait_ns=6_000_000).contended  # 6% > 5%
    assert Chunk(0, "timing", 10, 100_000_000, psi_some_us=11_000).contended  # 11% > 10%
    assert Chunk(0, "timing", 10, 100_000_000, steal_ticks=2, total_ticks=20).contended
    assert not Chunk(0, "timing", 10, 100_000_000).contended  # nothing known: not flagged


WALL = 100_000_000  # ns


def two_cpus(wait_ms: float, ours_ms: float, idle_ms: float = 0, psi_ms: float = 0) -> Chunk:
    """A 100 ms chunk on a 2-CPU machine: our threads waited `wait_ms` in all and ran `ours_ms`,
    the CPUs were idle `idle_ms`, some task waited `psi_ms` (PSI some)."""
    ms = 1_000_000
    return Chunk(
        0,
        "timing",
        10,
        WALL,
        psi_some_us=int(psi_ms * 1000),
        steal_ticks=0,
        total_ticks=20,
        wait_ns=int(wait_ms * ms),
        run_ns=int(ours_ms * ms),
        idle_ns=int(idle_ms * ms),
        cpus=2,
    )


def test_our_threads_waiting_for_each_other_is_not_contention():
    # a spinning pool of ours took a core from the pool that works: our threads waited 30 ms and
    # ran 200 ms (both CPUs, the whole chunk), the machine was never idle: nobody else ran
    own = two_cpus(wait_ms=30, ours_ms=200, psi_ms=30)
    assert own.others_ns == 0 and own.shares["others"] == 0.0 and not own.contended
    # a neighbour: our threads ran 110 ms, the CPUs were never idle, so others had 90 ms
    # (less /proc/stat's 10 ms resolution: 80 ms)
    beside = two_cpus(wait_ms=30, ours_ms=110)
    assert beside.others_ns == 80_000_000 and beside.contended  # min(30%, 80%) > 5%
    # others ran, but our threads hardly waited (one thread of ours, a core each)
    assert not two_cpus(wait_ms=2, ours_ms=100).contended
    # PSI counts as far as others ran: 30 ms of it on a machine nobody else used is ours
    assert not two_cpus(wait_ms=0, ours_ms=190, idle_ms=10, psi_ms=30).contended
    assert two_cpus(wait_ms=0, ours_ms=100, psi_ms=30).contended
    # what others had within /proc/stat's resolution (10 ms) is not counted
    assert two_cpus(wait_ms=30, ours_ms=192).others_ns == 0
    # without the idle time (records of version 1, no /proc/stat) our wait counts whole
    assert Chunk(0, "timing", 10, WALL, wait_ns=30_000_000, run_ns=200_000_000).contended


class Script:
    """A reader returning successive synthetic readings: `waits` ns of run-queue wait added per
    chunk (each chunk lasts however long the test takes; shares use a fake huge wall below)."""

    def __init__(self, waits):
        self.waits, self.total, self.calls = list(waits), 0, 0

    def __call__(self):
        if self.calls % 2 == 1:  # an end reading: this chunk's wait
            self.total += self.waits.pop(0)
        self.calls += 1
        return {
            "psi_some_us": 0,
            "psi_full_us": 0,
            "steal_ticks": 0,
            "total_ticks": 10,
            "wait_ns": self.total,
            "faults": 0,
            "threads": 3,
        }


def _run(sampler, runners_per_round, rounds):
    for _ in range(rounds):
        for runner in runners_per_round:
            sampler.start(runner)
            sampler.end("timing", 10 * (1 + sum(c.runner == runner for c in sampler.chunks)))


def test_sampler_summary_counts_only_model_chunks():
    big = 10**12  # ns: a wait this large makes a chunk contended whatever its wall time
    # model chunks: contended, clean, clean, clean; the anchor's are all contended and do not count
    sampler = ChunkSampler(
        ["m", "anchor"],
        model_runners=[0],
        chunks_per_runner=4,
        reader=Script([big, big, 0, big, 0, big, 0, big]),
    )
    _run(sampler, [0, 1], 4)
    summary = contention.summarize(sampler.to_dict())
    assert summary["chunks"] == 4 and summary["contended_chunks"] == 1
    assert summary["contended_fraction"] == 0.25 and summary["contended"] is True
    assert summary["threads_max"] == 3 and summary["faults_per_call"] == 0
    assert "25% of the model's chunks contended" in contention.describe(summary)


def test_sampler_stops_a_run_certain_to_end_contended():
    big = 10**12
    sampler = ChunkSampler(
        ["m", "anchor"],
        model_runners=[0],
        chunks_per_runner=20,
        abort_when_contended=True,
        reader=Script([big] * 10),
    )
    with pytest.raises(ContendedRun, match="machine contended") as info:
        _run(sampler, [0, 1], 5)
    # 10% of 20 chunks = 2: the third contended model chunk makes the run certain to be contended
    assert len([c for c in sampler.chunks if c.runner == 0]) == 3
    assert info.value.summary["contended"] is True


def test_clean_run_is_not_stopped_and_unmeasured_run_is_not_clean():
    sampler = ChunkSampler(
        ["m", "anchor"],
        model_runners=[0],
        chunks_per_runner=3,
        abort_when_contended=True,
        reader=Script([0] * 6),
    )
    _run(sampler, [0, 1], 3)
    assert contention.summarize(sampler.to_dict())["contended"] is False
    blind = ChunkSampler(["m"], [0], 1, reader=lambda: dict.fromkeys(contention.COUNTERS))
    _run(blind, [0], 1)
    summary = contention.summarize(blind.to_dict())
    assert summary["measured"] is False and summary["contended"] is None
    assert contention.summarize({}) == {"measured": False, "contended": None}
    assert "not measured" in contention.describe(summary)


def test_steady_allocator_is_glibc_policy_or_says_why():
    info = allocator.steady_allocator()
    assert info["policy"] in ("steady", "default")
    if info["policy"] == "steady":
        assert info["mmap_max"] == 0 and info["library"].startswith("glibc")
    else:
        assert info["reason"]
    assert allocator.ENV_VARS["MALLOC_MMAP_MAX_"] == "0"


def test_heap_state_sees_a_block_freed_between_two_live_ones():
    libc = allocator._libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        assert allocator.heap_state() is None
        return
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    size = 100_000  # under glibc's mmap threshold: from the heap under either policy
    first, second = libc.malloc(size), libc.malloc(size)  # the second keeps the first off the top
    alive = allocator.heap_state()
    libc.free(first)
    freed = allocator.heap_state()
    libc.free(second)
    assert alive is not None and freed is not None
    slack = 4096  # what reading the state (ctypes) may take from the holes in between
    assert freed["holes_bytes"] - alive["holes_bytes"] >= size - slack
    assert freed["in_use_bytes"] <= alive["in_use_bytes"] - size + slack
    assert all(isinstance(v, int) and v >= 0 for v in freed.values())


def test_records_keep_the_heap_the_warm_up_started_from(tmp_path, monkeypatch):
    from _profile_fakes import fake_parts, write_tiny

    from rexbench.measure.config import RunConfig
    from rexbench.measure.run.profile import profile_models

    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    (record,) = profile_models(
        ["py:nets.py:Tiny"], [RunConfig.preset("eager")], runs=2, warmup=1, parts=fake_parts()
    )
    policy = record.env["allocator"]
    if policy["policy"] == "default" or allocator.heap_state() is None:
        assert policy.get("heap_before_warmup") is None
        return
    heap = policy["heap_before_warmup"]
    assert set(heap) == {"in_use_bytes", "holes_bytes", "top_bytes", "free_chunks"}
    assert heap["in_use_bytes"] > 10 * 2**20  # torch itself, at least
    assert all(isinstance(v, int) and v >= 0 for v in heap.values())


# ------------------------------------------------ real runtimes, real neighbours, real counters


def alone(read, cpus: int):
    """`read`'s real readings of our own threads, on a machine where nothing else runs: the CPUs
    were idle whenever our threads did not run, and only our threads waited (PSI some), no steal."""

    def reading():
        got = read()
        now = time.perf_counter_ns()
        got.update(cpus=cpus, idle_ns=cpus * now - got["run_ns"])
        got.update(steal_ticks=0, psi_some_us=got["wait_ns"] // 1000)
        return got

    return reading


@pytest.mark.slow
@pytest.mark.real_counters
def test_the_runtimes_own_threads_are_never_read_as_contention(tmp_path, monkeypatch):
    """eager, ONNX Runtime and OpenVINO at 2 threads in the same rounds, our
    threads' real run-queue wait and CPU time (whatever waited for whatever: PyTorch's, ORT's, TBB's
    threads), on a machine where no other process runs: no chunk is contended."""
    from _profile_fakes import fake_parts

    from rexbench.measure.backends.onnxruntime import FORCE_SPINNING_STOP
    from rexbench.measure.config import RunConfig
    from rexbench.measure.run.profile import profile_models

    monkeypatch.setattr(contention, "read_counters", alone(contention.read_counters, 2))
    names = ("eager", "ort", "openvino")
    configs = [RunConfig.preset(n, threads=2, resolution=64) for n in names]
    records = profile_models(
        ["mobilenet_v3_small"], configs, runs=20, warmup=2, out_dir=tmp_path, parts=fake_parts()
    )
    assert [r.run.label for r in records] == list(names)
    for r in records:
        data = r.timing.contention
        assert data["version"] == 2 and all(data["sources"].values())
        summary = contention.summarize(data)
        assert summary["measured"] and summary["chunks"] == 3 * 2  # 20 runs of 3 configurations
        assert summary["contended"] is False and summary["contended_chunks"] == 0
        assert summary["others_share"] == 0.0 and summary["wait_share"] >= 0
        assert summary["threads_max"] >= 3  # the main thread and at least two pools' workers
        assert not any(w.startswith("machine contended") for w in r.warnings)
    ort, ov = (r.timing.preparation["runtime"] for r in records[1:])
    assert ort[FORCE_SPINNING_STOP] == "1"
    for info in (ort, ov):  # warm-up, the interleaved warm-up round and 2 timed chunks each
        settle = info["settle_own_threads"]
        assert settle["chunks"] == 4 and settle["not_settled"] == 0


BUSY_LOOP = (
    "import os, sys, time\n"
    "os.sched_setaffinity(0, {int(sys.argv[1])})\n"
    "end = time.monotonic() + float(sys.argv[2])\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
)


@pytest.mark.slow
@pytest.mark.real_counters
def test_a_real_busy_process_beside_a_runtime_is_contended_and_no_baseline_is_saved(tmp_path):
    """`rexbench baseline save ... --config ort --threads 2` on two CPUs, with one busy process
    pinned to each of them for the whole run: refused (exit 2), nothing written."""
    import subprocess
    import sys
    from pathlib import Path

    from _profile_fakes import write_tiny

    write_tiny(tmp_path)
    cores = sorted(os.sched_getaffinity(0))[:2]
    repo = Path(__file__).resolve().parents[2]
    # 10 calls of 3x512x512 are a chunk long enough to see a neighbour in (0.4 ms at 3x16x16)
    argv = [sys.executable, "-m", "rexbench", "baseline", "save", "py:nets.py:Tiny"]
    argv += ["--config", "ort", "--threads", "2", "--input-shape", "3x512x512"]
    argv += ["--runs", "10", "--warmup", "2", "--dir", "b"]
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(c), "300"]) for c in cores]
    try:
        done = subprocess.run(
            argv,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(repo)},
            preexec_fn=lambda: os.sched_setaffinity(0, cores),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    errors = [line for line in done.stderr.splitlines() if line.startswith("rexbench: error:")]
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = errors
    assert "not saved: measured on a contended machine" in line
    assert "other processes ran" in line
    assert not (tmp_path / "b").exists()
