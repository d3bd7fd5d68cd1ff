"""What one GPU check run measures: its sizes and places (`CheckSettings`) and the configurations of
each model (`configs_for`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rexbench.measure.config import RunConfig

HEADLINE = "rexnet_x2.0"


@dataclass(frozen=True)
class CheckSettings:
    """Sizes and places of one check run. The GPU check: batch 64, the models' own resolution, 200
    timed calls after 20 warm-up calls; a dry run: CPU, batch 2, 32 px, a few calls."""

    device: str = "cuda"
    batch_size: int = 64
    resolution: int | None = None
    runs: int = 200
    warmup: int = 20
    round_size: int = 10
    flush_l2: bool = False
    agreement_rounds: int = 10
    agreement_per_round: int = 20
    dry_run: bool = False
    out_dir: Path | None = None
    headline: str = HEADLINE

    @classmethod
    def dry(cls, **overrides: Any) -> CheckSettings:
        fields = {
            "device": "cpu",
            "batch_size": 2,
            "resolution": 32,
            "runs": 20,
            "warmup": 2,
            "round_size": 5,
            "agreement_rounds": 4,
            "agreement_per_round": 5,
            "dry_run": True,
        }
        return cls(**{**fields, **overrides})


def configs_for(spec: str, settings: CheckSettings) -> list[RunConfig]:
    """compile_cl for every model; the headline model also eager, max, fp16, bf16 and CUDA graphs."""
    s = settings
    common = {
        "device": s.device,
        "batch_size": s.batch_size,
        "resolution": s.resolution,
        "runs": s.runs,
        "warmup": s.warmup,
        "flush_l2": s.flush_l2,
    }
    configs = [RunConfig.preset("compile_cl", **common)]
    if spec == s.headline:
        configs += [
            RunConfig.preset("eager", **common),
            RunConfig.preset("max", **common),
            RunConfig.preset("compile_cl", **common, dtype="fp16"),
            RunConfig.preset("compile_cl", **common, dtype="bf16"),
            RunConfig.preset("cudagraphs", **common),
        ]
    return configs
