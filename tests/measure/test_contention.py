"""rexbench.measure.machine.contention: parsers on synthetic /proc contents, chunk shares, run summaries,
the early stop; rexbench.measure.machine.allocator's policy."""

from __future__ import annotations

import ctypes

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
    assert contention.parse_schedstat("") is None


@pytest.mark.real_counters
def test_read_counters_falls_back_cleanly_where_files_are_missing(tmp_path):
    tasks = tmp_path / "task"
    for tid, wait in (("1", 100), ("2", 250)):
        (tasks / tid).mkdir(parents=True)
        (tasks / tid / "schedstat").write_text(f"999 {wait} 3\n")
    (tmp_path / "psi").write_text(PSI)
    got = contention.read_counters(Paths(tmp_path / "psi", tmp_path / "nostat", tasks))
    assert got["psi_some_us"] == 321339141 and got["wait_ns"] == 350 and got["threads"] == 2
    assert got["steal_ticks"] is None and got["total_ticks"] is None
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
    assert quiet.shares == {"psi": pytest.approx(0.01), "steal": 0.0, "wait": pytest.approx(0.01)}
    assert not quiet.contended
    assert Chunk(0, "timing", 10, 100_000_000, wait_ns=6_000_000).contended  # 6% > 5%
    assert Chunk(0, "timing", 10, 100_000_000, psi_some_us=11_000).contended  # 11% > 10%
    assert Chunk(0, "timing", 10, 100_000_000, steal_ticks=2, total_ticks=20).contended
    assert not Chunk(0, "timing", 10, 100_000_000).contended  # nothing known: not flagged


class Script:
    """A reader returning successive synthetic readings: `waits` ns of run-queue wait added per
    chunk (each chunk lasts however long the test takes; shares use a fake huge wall below)."""

    def __init__(self, waits):
        self.waits, self.total, self.calls = list(waits), 0, 0

    def __call__(self):
        if self.calls % 2 == 1:  # an end reading: this chunk's wait
            self.total += self.waits.pop(0)
        self.calls += 1
        return {"psi_some_us": 0, "psi_full_us": 0, "steal_ticks": 0, "total_ticks": 10,
                "wait_ns": self.total, "faults": 0, "threads": 3}  # fmt: skip


def _run(sampler, runners_per_round, rounds):
    for _ in range(rounds):
        for runner in runners_per_round:
            sampler.start(runner)
            sampler.end("timing", 10 * (1 + sum(c.runner == runner for c in sampler.chunks)))


def test_sampler_summary_counts_only_model_chunks():
    big = 10**12  # ns: a wait this large makes a chunk contended whatever its wall time
    # model chunks: contended, clean, clean, clean; the anchor's are all contended and do not count
    sampler = ChunkSampler(["m", "anchor"], model_runners=[0], chunks_per_runner=4,
                           reader=Script([big, big, 0, big, 0, big, 0, big]))  # fmt: skip
    _run(sampler, [0, 1], 4)
    summary = contention.summarize(sampler.to_dict())
    assert summary["chunks"] == 4 and summary["contended_chunks"] == 1
    assert summary["contended_fraction"] == 0.25 and summary["contended"] is True
    assert summary["threads_max"] == 3 and summary["faults_per_call"] == 0
    assert "25% of the model's chunks contended" in contention.describe(summary)


def test_sampler_stops_a_run_certain_to_end_contended():
    big = 10**12
    sampler = ChunkSampler(["m", "anchor"], model_runners=[0], chunks_per_runner=20,
                           abort_when_contended=True, reader=Script([big] * 10))  # fmt: skip
    with pytest.raises(ContendedRun, match="machine contended") as info:
        _run(sampler, [0, 1], 5)
    # 10% of 20 chunks = 2: the third contended model chunk makes the run certain to be contended
    assert len([c for c in sampler.chunks if c.runner == 0]) == 3
    assert info.value.summary["contended"] is True


def test_clean_run_is_not_stopped_and_unmeasured_run_is_not_clean():
    sampler = ChunkSampler(["m", "anchor"], model_runners=[0], chunks_per_runner=3,
                           abort_when_contended=True, reader=Script([0] * 6))  # fmt: skip
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
