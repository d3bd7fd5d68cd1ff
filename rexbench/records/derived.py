"""What plots, reports and gates read from a record, derived from its stored fields: latency with its
confidence interval, settings, counts, the model's family, point label and published top-1, and the
machine. Pure (numpy via rexbench.stats), no torch.

`RecordView` is the base class of `rexbench.records.schema.Record` and `ModelView` that of
`ModelInfo`, so these read as properties: `record.latency`, `record.device_kind`, `record.model.top1`.

Latency is always derived again from the raw samples (`Record.timing.samples_ns`, one sample per
batch) with `rexbench.stats.summarize`, so every figure and report uses one definition: the median
per batch in milliseconds and its distribution-free 95% confidence interval.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from rexbench.registry import MODELS

if TYPE_CHECKING:
    from rexbench.registry import ModelEntry

#: The settings that must agree before two latencies are compared (batch, dtype,
#: resolution, config). `device` decides which paper column / panel a record belongs to.
COMPARED_SETTINGS = ("batch_size", "dtype", "resolution", "config")

R = TypeVar("R", bound="RecordView")


@dataclass(frozen=True)
class Latency:
    """Median latency per batch (ms) with its 95% CI, and throughput (images/s) at that median."""

    median_ms: float
    ci_low_ms: float
    ci_high_ms: float
    n: int
    batch_size: int
    throughput: float
    noisy: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.lru_cache(maxsize=4096)
def _latency(data: tuple[int, ...], batch: int) -> Latency:
    from rexbench.stats import summarize

    s = summarize(data, batch)
    return Latency(
        median_ms=s.median / 1e6,
        ci_low_ms=s.ci_low / 1e6,
        ci_high_ms=s.ci_high / 1e6,
        n=s.n,
        batch_size=batch,
        throughput=s.throughput,
        noisy=s.noisy,
    )


# ------------------------------------------------------------------------------ models, labels


def zoo_entry(spec: str) -> ModelEntry | None:
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


class ModelView:
    """Properties of `ModelInfo` derived from its canonical `spec`."""

    spec: str

    @property
    def zoo_entry(self) -> ModelEntry | None:
        return zoo_entry(self.spec)

    @property
    def family(self) -> str:
        return family(self.spec)

    @property
    def short_label(self) -> str:
        return short_label(self.spec)

    @property
    def top1(self) -> float | None:
        return top1(self.spec)


# ------------------------------------------------------------------------------------ records


class RecordView:
    """Properties of `Record` derived from its run config, counts, timing and fingerprint."""

    if TYPE_CHECKING:  # Record's fields (its schema module imports this one, not the reverse)
        model: ModelView
        run: Any  # RunInfo: config (dict), label, config_id
        env: dict[str, Any]
        counts: dict[str, Any]
        timing: Any  # Timing | None: samples_ns, run_id
        parity: dict[str, Any]
        created: str
        machine_id: str
        key: tuple[str, str]

    @property
    def samples(self) -> list[int]:
        """The raw samples (ns, one per batch); [] without timing."""
        return list(self.timing.samples_ns) if self.timing is not None else []

    @property
    def latency(self) -> Latency | None:
        """The latency from the raw samples; None for a record without timing samples."""
        data = self.samples
        return _latency(tuple(data), self.batch_size) if data else None

    @property
    def valid(self) -> bool:
        """False when the output parity check (`rexbench.measure.checks.parity`) found the prepared model
        computing another function than the eager fp32 model; records without a check are valid."""
        return self.parity.get("valid") is not False

    @property
    def parity_text(self) -> str:
        """ "ok (rel L2 3.1e-07)", "INVALID (rel L2 0.21 > 0.001)" or "not checked" (older records)."""
        p = self.parity
        if "valid" not in p:
            return "not checked"
        rel, tol = p.get("rel_l2"), (p.get("tolerance") or {}).get("rel_l2")
        value = f"rel L2 {rel:.2g}" if isinstance(rel, (int, float)) else str(p.get("reason", "-"))
        if p["valid"]:
            return f"ok ({value})"
        limit = f" > {tol:g}" if isinstance(rel, (int, float)) and tol else ""
        return f"INVALID ({value}{limit})"

    @property
    def parity_cell(self) -> str:
        """`parity_text` in a table cell: "ok 3e-07", "INVALID 0.21" or "-" (not checked)."""
        p = self.parity
        if "valid" not in p:
            return "-"
        rel = p.get("rel_l2")
        number = f" {rel:.1g}" if isinstance(rel, (int, float)) else ""
        return f"ok{number}" if p["valid"] else f"INVALID{number}"

    @property
    def run_id(self) -> str | None:
        """The id of the interleaved measurement the record was timed in (None: older records)."""
        return self.timing.run_id if self.timing is not None else None

    def measured_with(self, other: RecordView) -> bool:
        """Whether both records were timed in the same interleaved measurement."""
        return self.run_id is not None and self.run_id == other.run_id

    @property
    def batch_size(self) -> int:
        return int(self.run.config.get("batch_size") or 1)

    @property
    def device(self) -> str:
        """The device string of the run: "cpu", "cuda", "cuda:1"."""
        return str(self.run.config.get("device") or "cpu")

    @property
    def device_kind(self) -> str:
        """ "cpu" or "cuda": which paper latency column (and Figure 3 panel) the record belongs to."""
        return "cuda" if self.device.startswith("cuda") else "cpu"

    @property
    def dtype(self) -> str:
        return str(self.run.config.get("dtype") or "fp32")

    @property
    def resolution(self) -> int | None:
        """The input size that was used: the config's, else the counted input shape, else the
        model's registry default (None for an external model without either)."""
        res = self.run.config.get("resolution")
        if res:
            return int(res)
        shape = self.counts.get("input_shape")
        if isinstance(shape, list) and shape and isinstance(shape[-1], int):
            return shape[-1]
        entry = self.model.zoo_entry
        return entry.resolution if entry is not None else None

    @property
    def settings(self) -> dict[str, Any]:
        """The settings compared across records (COMPARED_SETTINGS) plus device and config id."""
        return {
            "device": self.device,
            "batch_size": self.batch_size,
            "dtype": self.dtype,
            "resolution": self.resolution,
            "config": self.run.label,
            "config_id": self.run.config_id,
        }

    def setting_differences(self, other: RecordView) -> list[str]:
        """ "batch_size 1 vs 8"-style lines for every compared setting in which two records differ."""
        sa, sb = self.settings, other.settings
        out = [f"{k} {sa[k]} vs {sb[k]}" for k in COMPARED_SETTINGS if sa[k] != sb[k]]
        if not out and sa["config_id"] != sb["config_id"]:
            out.append(
                f"config_id {sa['config_id']} vs {sb['config_id']} (same label, other options)"
            )
        return out

    @property
    def params(self) -> int | None:
        """Exact parameter count (`params_total` from rexbench.measure.counting.counts, or `params`)."""
        value = self.counts.get("params_total", self.counts.get("params"))
        return int(value) if isinstance(value, (int, float)) else None

    @property
    def macs_conv(self) -> int | None:
        """Conv + Linear multiply-adds: the paper's "FLOPs" convention (rexbench.measure.counting.counts)."""
        value = self.counts.get("macs_conv")
        return int(value) if isinstance(value, (int, float)) else None

    @property
    def machine_label(self) -> str:
        """ "Intel Xeon Gold 6248 (8 cores), Tesla V100, torch 2.4.1" from the fingerprint."""
        cpu = self.env.get("cpu") or {}
        cores = cpu.get("usable_cores") or cpu.get("logical_cores")
        parts = [f"{cpu.get('brand') or 'unknown CPU'}" + (f" ({cores} cores)" if cores else "")]
        gpus = [str(g.get("name")) for g in self.env.get("gpus") or [] if g.get("name")]
        if gpus:
            parts.append(" + ".join(gpus))
        torch_version = (self.env.get("software") or {}).get("torch")
        if torch_version:
            parts.append(f"torch {torch_version}")
        return ", ".join(parts)

    @property
    def hardware(self) -> str:
        """The device the latency was measured on: the CPU brand, or the GPU name."""
        if self.device_kind == "cuda":
            gpus = self.env.get("gpus") or []
            index = int(self.device.partition(":")[2] or 0)
            return str(gpus[index].get("name")) if index < len(gpus) else "unknown GPU"
        return str((self.env.get("cpu") or {}).get("brand") or "unknown CPU")

    @staticmethod
    def latest(records: Iterable[R]) -> tuple[list[R], int]:
        """One record per (machine, model, config id): the newest. Returns (kept, number dropped)."""
        best: dict[tuple[str, str, str], R] = {}
        total = 0
        for r in records:
            total += 1
            key = (r.machine_id, *r.key)
            if key not in best or r.created > best[key].created:
                best[key] = r
        return list(best.values()), total - len(best)

    @staticmethod
    def by_machine(records: Iterable[R]) -> dict[str, list[R]]:
        """Records grouped by machine id, machines in order of first appearance."""
        out: dict[str, list[R]] = {}
        for r in records:
            out.setdefault(r.machine_id, []).append(r)
        return out
