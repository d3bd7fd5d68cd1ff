"""Synthetic gate inputs shared by the gate and gate-CLI tests: samples and records with known medians."""

from __future__ import annotations

import numpy as np

from rexbench.gate import checks as gate
from rexbench.measure.config import RunConfig
from rexbench.records.schema import ModelInfo, Record, RunInfo, Timing

MS = 1_000_000


def lognormal(median_ms: float, n: int = 300, sigma: float = 0.03, seed: int = 0) -> list[int]:
    """n integer-ns samples around median_ms with multiplicative noise sigma."""
    rng = np.random.default_rng(seed)
    return [int(v) for v in median_ms * MS * np.exp(rng.normal(0.0, sigma, n))]


def samples(median_ms: float, anchor_ms: float | None = 2.0, seed: int = 0, **kw) -> gate.Samples:
    anchor = None if anchor_ms is None else lognormal(anchor_ms, seed=seed + 100)
    return gate.Samples(lognormal(median_ms, seed=seed, **kw), anchor)


def env(machine: str = "amd-epyc-2c-00000001", torch: str = "2.13.0") -> dict:
    return {
        "machine_id": machine,
        "cpu": {"usable_cores": 2},
        "software": {"torch": torch, "python": "3.11.2"},
        "threads": {"torch_num_threads": 2, "env": {}},
    }


def record(
    median_ms=40.0,
    anchor_ms=2.0,
    *,
    spec="rexnet_x1.0",
    machine="amd-epyc-2c-00000001",
    seed=0,
    counts=None,
    provenance=None,
    torch="2.13.0",
    anchor_version=1,
    load=1.9,
) -> Record:
    config = RunConfig.preset("eager", runs=300, warmup=5, threads=2)
    return Record(
        model=ModelInfo(spec, "py" if spec.startswith("py:") else "zoo", {}, provenance or {}),
        run=RunInfo.from_config(config),
        env=env(machine, torch),
        counts=counts
        if counts is not None
        else {
            "input_shape": [1, 3, 224, 224],
            "params": 4_796_873,
            "params_trainable": 4_796_873,
            "macs_conv": 398_370_392,
        },
        timing=Timing(
            samples_ns=lognormal(median_ms, seed=seed),
            anchor_ns=lognormal(anchor_ms, seed=seed + 100) if anchor_ms else [],
            anchor={
                "name": "conv4",
                "version": anchor_version,
                "device": "cpu",
                "threads": 1,
                "batch_size": 1,
            }
            if anchor_ms
            else {},
            device_end={"time": "2026-01-01T00:00:00+00:00", "loadavg": [load, 1.0, 1.0]},
        ),
    )
