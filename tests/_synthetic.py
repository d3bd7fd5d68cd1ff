"""Synthetic records for the plot, report and sweep tests: real Record objects with exact counts
(tests/data/reference_counts.json), a fingerprint of an invented machine and samples whose median
is known exactly (21 samples, symmetric around it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rexbench.measure.config import RunConfig
from rexbench.records.schema import ModelInfo, Record, RunInfo, Timing

REFERENCE = json.loads((Path(__file__).parent / "data" / "reference_counts.json").read_text())[
    "models"
]


def env(machine: str = "xeon-8c-aaaa0001", brand: str = "Intel Xeon Test 1234", **kw: Any) -> dict:
    gpus = kw.pop("gpus", [])
    torch_version = kw.pop("torch", "2.13.0")
    return {
        "machine_id": machine,
        "hostname": "test",
        "cpu": {"brand": brand, "usable_cores": kw.pop("cores", 8), "flags": ["avx2"]},
        "gpus": gpus,
        "gpu_error": None,
        "software": {"torch": torch_version, "python": "3.11.2", "cuda": None, "cudnn": None},
        "os": {"platform": "Linux-test"},
        "threads": {"torch_num_threads": 8, "env": {}},
        "git": None,
    }


def samples_around(median_ms: float, n: int = 21, spread: float = 0.01) -> list[int]:
    """n (odd) integer-ns samples whose median is exactly median_ms."""
    center = round(median_ms * 1e6)
    step = max(1, round(center * spread / n))
    half = n // 2
    return [center + k * step for k in range(-half, half + 1)]


def make(
    spec: str,
    median_ms: float | None = 10.0,
    *,
    machine: str = "xeon-8c-aaaa0001",
    brand: str = "Intel Xeon Test 1234",
    device: str = "cpu",
    preset: str = "eager",
    created: str = "2026-01-01T00:00:00+00:00",
    environment: dict | None = None,
    **overrides: Any,
) -> Record:
    config = RunConfig.preset(preset, device=device, runs=21, warmup=1, **overrides)
    ref = REFERENCE.get(spec, {})
    res = config.resolution or ref.get("resolution", 224)
    counts = {
        "input_shape": [1, 3, res, res],
        "params_total": ref.get("params", 1_000_000),
        "macs_conv": ref.get("macs_conv_at_resolution", 100_000_000)
        if res == ref.get("resolution", 224)
        else ref.get("macs_conv_224", 100_000_000),
    }
    timing = None if median_ms is None else Timing(samples_around(median_ms), [1])
    e = environment or env(machine, brand)
    if device.startswith("cuda") and not e["gpus"]:
        e = {**e, "gpus": [{"name": "Tesla V100-SXM2-16GB"}]}
    return Record(
        model=ModelInfo(spec),
        run=RunInfo.from_config(config),
        env=e,
        counts=counts,
        timing=timing,
        created=created,
    )
