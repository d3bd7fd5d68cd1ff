"""What plots and reports read from records: latency with its confidence interval, counts, settings,
families, short point labels and machine descriptions. Pure (numpy via rexbench.stats), no torch.

Latency is always derived again from the raw samples (`Record.timing.samples_ns`, one sample per
batch) with `rexbench.stats.summarize`, so every figure and report uses one definition: the median
per batch in milliseconds and its distribution-free 95% confidence interval.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rexbench.records.schema import Record
from rexbench.registry import MODELS

#: The settings that must agree before two latencies are compared (batch, dtype,
#: resolution, config). `device` decides which paper column / panel a record belongs to.
COMPARED_SETTINGS = ("batch_size", "dtype", "resolution", "config")


@dataclass(frozen=True)
class Latency:
    """Median latency per batch (ms) with its 95% CI, and throughput (images/s) at that median."""

    median_ms: float
    low_ms: float
    high_ms: float
    n: int
    batch_size: int
    throughput: float
    noisy: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "median_ms": self.median_ms,
            "ci_low_ms": self.low_ms,
            "ci_high_ms": self.high_ms,
            "n": self.n,
            "batch_size": self.batch_size,
            "throughput": self.throughput,
            "noisy": self.noisy,
        }


def samples(record: Record) -> list[int]:
    return list(record.timing.samples_ns) if record.timing is not None else []


def latency(record: Record) -> Latency | None:
    """The record's latency from its raw samples; None for a record without timing samples."""
    data = samples(record)
    if not data:
        return None
    return _latency(tuple(data), batch_size(record))


@functools.lru_cache(maxsize=4096)
def _latency(data: tuple[int, ...], batch: int) -> Latency:
    from rexbench.stats import summarize

    s = summarize(data, batch)
    return Latency(
        s.median / 1e6, s.ci_low / 1e6, s.ci_high / 1e6, s.n, batch, s.throughput, s.noisy
    )


# ------------------------------------------------------------------------------------ settings


def batch_size(record: Record) -> int:
    return int(record.run.config.get("batch_size") or 1)


def device(record: Record) -> str:
    """The device string of the run: "cpu", "cuda", "cuda:1"."""
    return str(record.run.config.get("device") or "cpu")


def device_kind(record: Record) -> str:
    """ "cpu" or "cuda": which paper latency column (and Figure 3 panel) the record belongs to."""
    return "cuda" if device(record).startswith("cuda") else "cpu"


def dtype(record: Record) -> str:
    return str(record.run.config.get("dtype") or "fp32")


def resolution(record: Record) -> int | None:
    """The input size that was used: the config's, else the counted input shape, else the model's
    registry default (None for an external model without either)."""
    res = record.run.config.get("resolution")
    if res:
        return int(res)
    shape = record.counts.get("input_shape")
    if isinstance(shape, list) and shape and isinstance(shape[-1], int):
        return shape[-1]
    entry = zoo_entry(record.model.spec)
    return entry.resolution if entry is not None else None


def settings(record: Record) -> dict[str, Any]:
    """The settings compared across records (COMPARED_SETTINGS) plus device and config id."""
    return {
        "device": device(record),
        "batch_size": batch_size(record),
        "dtype": dtype(record),
        "resolution": resolution(record),
        "config": record.run.label,
        "config_id": record.run.config_id,
    }


def setting_differences(a: Record, b: Record) -> list[str]:
    """ "batch_size 1 vs 8"-style lines for every compared setting in which two records differ."""
    sa, sb = settings(a), settings(b)
    out = [f"{k} {sa[k]} vs {sb[k]}" for k in COMPARED_SETTINGS if sa[k] != sb[k]]
    if not out and sa["config_id"] != sb["config_id"]:
        out.append(f"config_id {sa['config_id']} vs {sb['config_id']} (same label, other options)")
    return out


# -------------------------------------------------------------------------------------- counts


def params(record: Record) -> int | None:
    """Exact parameter count (`params_total` from rexbench.measure.counting, or `params`)."""
    value = record.counts.get("params_total", record.counts.get("params"))
    return int(value) if isinstance(value, (int, float)) else None


def macs_conv(record: Record) -> int | None:
    """Conv + Linear multiply-adds: the paper's "FLOPs" convention (rexbench.measure.counting)."""
    value = record.counts.get("macs_conv")
    return int(value) if isinstance(value, (int, float)) else None


# ------------------------------------------------------------------------------ models, labels


def zoo_entry(spec: str):  # -> ModelEntry | None
    """The registry entry of a built-in model's canonical spec; None for external specs."""
    if ":" in spec:
        return None
    try:
        return MODELS.get(spec)
    except Exception:
        return None


def family(spec: str) -> str:
    """Registry family ("ReXNet", "EfficientNet", ...); an external spec's source ("timm", "py")."""
    entry = zoo_entry(spec)
    return entry.family if entry is not None else spec.partition(":")[0]


_LABELS = (
    (r"rexnet_x(.+)", r"x\1"),
    (r"rexnet_lite_x(.+)", r"lite x\1"),
    (r"rexnet_plain", "plain"),
    (r"efficientnet_b(\d)", r"B\1"),
    (r"efficientnet_lite(\d)", r"lite\1"),
    (r"mobilenet_v(\d)_x(.+)", r"V\1 x\2"),
    (r"mobilenet_v3_(large|small)", lambda m: f"V3-{m[1][0].upper()}"),
    (r"mobilenet_v(\d)", r"V\1"),
)


def short_label(spec: str) -> str:
    """The point label of Figure 3: "x1.0", "B0", "lite0", "V3-L"; external specs as they are."""
    for pattern, repl in _LABELS:
        if re.fullmatch(pattern, spec):
            return re.sub(pattern, repl, spec)
    return spec


def top1(spec: str) -> float | None:
    """The paper's published top-1 (%) of a built-in model (rexbench.paper.tables headline row)."""
    if zoo_entry(spec) is None:
        return None
    from rexbench.paper.tables import published

    row = published(spec)
    return row.top1.value if row is not None and row.top1 is not None else None


# ------------------------------------------------------------------------------------ machines


def machine_label(env: dict[str, Any]) -> str:
    """ "Intel Xeon Gold 6248 (8 cores), Tesla V100, torch 2.4.1" from a fingerprint."""
    cpu = env.get("cpu") or {}
    cores = cpu.get("usable_cores") or cpu.get("logical_cores")
    parts = [f"{cpu.get('brand') or 'unknown CPU'}" + (f" ({cores} cores)" if cores else "")]
    gpus = [str(g.get("name")) for g in env.get("gpus") or [] if g.get("name")]
    if gpus:
        parts.append(" + ".join(gpus))
    torch_version = (env.get("software") or {}).get("torch")
    if torch_version:
        parts.append(f"torch {torch_version}")
    return ", ".join(parts)


def gpu_name(env: dict[str, Any], dev: str) -> str | None:
    """The name of the GPU a "cuda[:N]" run used, from the fingerprint."""
    gpus = env.get("gpus") or []
    index = int(dev.partition(":")[2] or 0)
    return str(gpus[index].get("name")) if index < len(gpus) else None


def hardware_of(record: Record) -> str:
    """The device a latency was measured on: the CPU brand, or the GPU name."""
    env = record.env
    if device_kind(record) == "cuda":
        return gpu_name(env, device(record)) or "unknown GPU"
    return str((env.get("cpu") or {}).get("brand") or "unknown CPU")


def latest(records: Iterable[Record]) -> tuple[list[Record], int]:
    """One record per (machine, model, config id): the newest. Returns (kept, number dropped)."""
    best: dict[tuple[str, str, str], Record] = {}
    total = 0
    for r in records:
        total += 1
        key = (r.machine_id, *r.key)
        if key not in best or r.created > best[key].created:
            best[key] = r
    return list(best.values()), total - len(best)


def by_machine(records: Iterable[Record]) -> dict[str, list[Record]]:
    """Records grouped by machine id, machines in order of first appearance."""
    out: dict[str, list[Record]] = {}
    for r in records:
        out.setdefault(r.machine_id, []).append(r)
    return out
