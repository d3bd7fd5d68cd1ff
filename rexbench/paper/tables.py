"""The paper's published numbers: Tables 4, 5, A1 and A2, and the hardware of their latency columns.

Every number is kept exactly as printed (text, value and printed precision) and every row names its
table. Keys are rexbench canonical names. Source: Han et al., "Rethinking Channel Dimensions for
Efficient Model Design", CVPR 2021 (arXiv 2007.00992 v3); the official clovaai/rexnet README where said.
"FLOPs" in the paper are multiply-adds of the conv and linear layers (rexbench's `macs_conv`).
The paper's relative claims and its known inconsistencies are in `rexbench.paper.claims`.
Pure data: no torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from rexbench.errors import RexbenchError
from rexbench.registry import MODELS

UNIT_SCALE: dict[str, float] = {"%": 1.0, "B": 1e9, "M": 1e6, "ms": 1.0}


@dataclass(frozen=True)
class Printed:
    """A number as the paper prints it: "0.86B" -> value 0.86, unit "B", decimals 2."""

    text: str
    value: float
    unit: str
    decimals: int

    @classmethod
    def parse(cls, text: str) -> Printed:
        match = re.fullmatch(r"(\d+(?:\.(\d+))?)(%|B|M|ms)", text)
        if match is None:
            raise ValueError(f"not a printed paper number: {text!r}")
        return cls(text, float(match[1]), match[3], len(match[2] or ""))

    @property
    def scaled(self) -> float:
        """The value in base units: 0.86B -> 0.86e9 multiply-adds, 4.8M -> 4.8e6 parameters."""
        return self.value * UNIT_SCALE[self.unit]

    def rounds(self, exact: float) -> bool:
        """Does `exact` (in base units) print as this number at this precision (round half up)?"""
        quantum = Decimal(1).scaleb(-self.decimals)
        shown = (Decimal(exact) / Decimal(UNIT_SCALE[self.unit])).quantize(quantum, ROUND_HALF_UP)
        return shown == Decimal(str(self.value)).quantize(quantum)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Hardware:
    """Where and how a latency column was measured, as the paper states it."""

    device: str
    batch: int
    precision: str
    runs: int
    source: str
    note: str = ""


@dataclass(frozen=True)
class PublishedEntry:
    """One row of a paper table. `flops` are multiply-adds; latencies are per batch, in ms."""

    model: str  # rexbench canonical name
    table: str  # "Table 5"
    label: str  # row label as printed, without reference numbers
    resolution: int  # input size of the row (see PublishedTable.resolution_source)
    top1: Printed | None = None
    top5: Printed | None = None
    flops: Printed | None = None
    params: Printed | None = None
    cpu: Printed | None = None
    gpu: Printed | None = None
    gpu_fp16: Printed | None = None
    marks: str = ""  # Table 4: "†" = SE and SiLU; "†*" = plus AutoAug/RandAug/Mixup

    def metric(self, name: str) -> Printed | None:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
        return getattr(self, name)


METRICS = ("top1", "top5", "flops", "params", "cpu", "gpu", "gpu_fp16")


@dataclass(frozen=True)
class PublishedTable:
    id: str  # "Table 5"
    title: str
    rows: tuple[PublishedEntry, ...]
    resolution_source: str
    cpu: Hardware | None = None
    gpu: Hardware | None = None
    gpu_fp16: Hardware | None = None


# --- hardware (§5.1 "Comparison with EfficientNets"; Appendix B.4) --------------------------------
# The paper names FP32/FP16 only in Table A2's column heads; FP32 is assumed for Tables 5 and A1.

_RUNS = "latency averaged over 1,000 runs"
PAPER_CPU = Hardware(
    device="Intel Xeon CPU E5-2630",
    batch=1,
    precision="FP32",
    runs=1000,
    source=f"§5.1, Appendix B.4: {_RUNS}, batch 1",
    note="the official README names it 'Xeon E5-2630 v4'",
)
PAPER_GPU = Hardware("NVIDIA V100", 64, "FP32", 1000, f"§5.1, Appendix B.4: {_RUNS}, batch 64")
PAPER_GPU_FP16 = Hardware(
    "NVIDIA V100",
    64,
    "FP16",
    1000,
    "Table A2 column 'GPU FP16'; setup of B.4",
    "the official README's lite table used M40 GPUs for its GPU column",
)

# --- the tables, transcribed row by row ("-" = not printed) ---------------------------------------


def _rows(table: str, columns: tuple[str, ...], text: str) -> tuple[PublishedEntry, ...]:
    """Rows written as "canonical | label [marks] | resolution | cell | ...", cells as printed."""
    rows = []
    for line in text.strip().splitlines():
        model, label, res, *cells = (c.strip() for c in line.split("|"))
        values = {
            c: None if v == "-" else Printed.parse(v) for c, v in zip(columns, cells, strict=True)
        }
        label, _, marks = label.partition(" [")
        rows.append(
            PublishedEntry(model, table, label, int(res), marks=marks.rstrip("]"), **values)
        )
    return tuple(rows)


TABLE4 = PublishedTable(
    "Table 4",
    "Comparison of ImageNet performance (only the models rexbench builds)",
    _rows(
        "Table 4",
        ("top1", "top5", "flops", "params"),
        """
        mobilenet_v1       | MobileNetV1             | 224 | 70.6% | 89.5% | 0.56B | 4.2M
        mobilenet_v2       | MobileNetV2             | 224 | 72.0% | 91.0% | 0.30B | 3.5M
        mobilenet_v2_x1.4  | MobileNetV2 (x1.4)      | 224 | 74.7% | 92.5% | 0.59B | 6.9M
        mobilenet_v3_large | MobileNetV3-Large [†]   | 224 | 75.2% | -     | 0.22B | 5.4M
        efficientnet_b0    | EfficientNet-B0 [†]     | 224 | 76.7% | -     | 0.39B | 5.3M
        efficientnet_b0    | EfficientNet-B0 [†*]    | 224 | 77.3% | -     | 0.39B | 5.3M
        rexnet_x1.0        | ReXNet (x1.0) [†]       | 224 | 77.3% | 93.4% | 0.40B | 4.8M
        rexnet_x1.0        | ReXNet (x1.0) [†*]      | 224 | 77.9% | 93.9% | 0.40B | 4.8M
        """,
    ),
    resolution_source="§5.1: every model in Table 4 is trained and evaluated at 224x224",
)

TABLE5 = PublishedTable(
    "Table 5",
    "Scalability of ReXNets against EfficientNets",
    _rows(
        "Table 5",
        ("top1", "top5", "flops", "params", "cpu", "gpu"),
        """
        rexnet_x0.9     | ReXNet (x0.9) | 224 | 77.2% | 93.5% | 0.35B | 4.1M | 45ms  | 20ms
        efficientnet_b0 | Eff-B0        | 224 | 77.3% | 93.5% | 0.39B | 5.3M | 47ms  | 23ms
        rexnet_x1.0     | ReXNet (x1.0) | 224 | 77.9% | 93.9% | 0.40B | 4.8M | 47ms  | 21ms
        efficientnet_b1 | Eff-B1        | 240 | 79.2% | 94.5% | 0.70B | 7.8M | 70ms  | 37ms
        rexnet_x1.3     | ReXNet (x1.3) | 224 | 79.5% | 94.7% | 0.66B | 7.6M | 55ms  | 28ms
        efficientnet_b2 | Eff-B2        | 260 | 80.3% | 95.0% | 1.0B  | 9.2M | 77ms  | 48ms
        rexnet_x1.5     | ReXNet (x1.5) | 224 | 80.3% | 95.2% | 0.9B  | 9.7M | 59ms  | 31ms
        efficientnet_b3 | Eff-B3        | 300 | 81.7% | 95.6% | 1.8B  | 12M  | 100ms | 78ms
        rexnet_x2.0     | ReXNet (x2.0) | 224 | 81.6% | 95.7% | 1.5B  | 16M  | 69ms  | 40ms
        """,
    ),
    resolution_source="ReXNets at 224 (§5.1); EfficientNet B0-B3 at 224/240/260/300 as the official "
    "README prints them (the paper table does not)",
    cpu=PAPER_CPU,
    gpu=PAPER_GPU,
)

TABLE_A1 = PublishedTable(
    "Table A1",
    "Performance of ReXNets (all widths and ReXNet (plain))",
    _rows(
        "Table A1",
        ("top1", "top5", "flops", "params", "cpu", "gpu"),
        """
        rexnet_plain | ReXNet (plain) | 224 | 74.8% | 91.9% | 0.56B | 3.4M | 22ms | 10ms
        rexnet_x0.9  | ReXNet (x0.9)  | 224 | 77.2% | 93.5% | 0.35B | 4.1M | 46ms | 20ms
        rexnet_x1.0  | ReXNet (x1.0)  | 224 | 77.9% | 93.9% | 0.40B | 4.8M | 47ms | 21ms
        rexnet_x1.1  | ReXNet (x1.1)  | 224 | 78.6% | 94.1% | 0.48B | 5.6M | 51ms | 24ms
        rexnet_x1.2  | ReXNet (x1.2)  | 224 | 79.0% | 94.3% | 0.57B | 6.6M | 53ms | 26ms
        rexnet_x1.3  | ReXNet (x1.3)  | 224 | 79.5% | 94.7% | 0.66B | 7.6M | 55ms | 28ms
        rexnet_x1.4  | ReXNet (x1.4)  | 224 | 79.8% | 94.9% | 0.76B | 8.6M | 57ms | 30ms
        rexnet_x1.5  | ReXNet (x1.5)  | 224 | 80.3% | 95.2% | 0.86B | 9.7M | 59ms | 31ms
        rexnet_x2.0  | ReXNet (x2.0)  | 224 | 81.6% | 95.7% | 1.5B  | 16M  | 69ms | 40ms
        rexnet_x2.2  | ReXNet (x2.2)  | 224 | 81.7% | 95.8% | 1.8B  | 19M  | 73ms | 46ms
        rexnet_x3.0  | ReXNet (x3.0)  | 224 | 82.8% | 96.3% | 3.4B  | 34M  | 96ms | 61ms
        """,
    ),
    resolution_source="Table A1 caption: all models trained and evaluated at 224x224",
    cpu=PAPER_CPU,
    gpu=PAPER_GPU,
)

TABLE_A2 = PublishedTable(
    "Table A2",
    "Performance of ReXNet-lites against EfficientNet-lites",
    _rows(
        "Table A2",
        ("top1", "flops", "params", "cpu", "gpu", "gpu_fp16"),
        """
        efficientnet_lite0 | Eff-lite0         | 224 | 75.1% | 0.4B | 4.7M  | 30ms | 21ms | 15ms
        rexnet_lite_x1.0   | ReX-lite (x1.0)   | 224 | 76.2% | 0.4B | 4.7M  | 31ms | 22ms | 14ms
        efficientnet_lite1 | Eff-lite1         | 240 | 76.7% | 0.6B | 5.4M  | 44ms | 32ms | 22ms
        rexnet_lite_x1.3   | ReX-lite (x1.3)   | 224 | 77.8% | 0.6B | 6.8M  | 36ms | 28ms | 18ms
        efficientnet_lite2 | Eff-lite2         | 260 | 77.6% | 0.9B | 6.1M  | 48ms | 41ms | 29ms
        rexnet_lite_x1.5   | ReX-lite (x1.5)   | 224 | 78.6% | 0.8B | 8.3M  | 39ms | 33ms | 20ms
        efficientnet_lite3 | Eff-lite3         | 280 | 79.8% | 1.4B | 8.2M  | 60ms | 58ms | 42ms
        rexnet_lite_x2.0   | ReX-lite (x2.0)   | 224 | 80.2% | 1.5B | 13.0M | 49ms | 46ms | 26ms
        """,
    ),
    resolution_source="ReXNet-lite at 224; EfficientNet-lite0-3 at their published 224/240/260/280 "
    "(tensorflow/tpu efficientnet/lite; the paper table does not print them)",
    cpu=PAPER_CPU,
    gpu=PAPER_GPU,
    gpu_fp16=PAPER_GPU_FP16,
)

TABLES: tuple[PublishedTable, ...] = (TABLE4, TABLE5, TABLE_A1, TABLE_A2)
ENTRIES: tuple[PublishedEntry, ...] = tuple(r for t in TABLES for r in t.rows)

# The row a model's headline numbers come from: the table that compares it at its resolution.
_PRIORITY = ("Table 5", "Table A1", "Table A2", "Table 4")


# --- lookups ---------------------------------------------------------------------------------------


def row(model: str, table_id: str, marks: str = "") -> PublishedEntry:
    """The one row of `table_id` for canonical `model` (Table 4 has two rows for some: pass marks)."""
    rows = [r for r in table(table_id).rows if r.model == model]
    if len(rows) > 1:
        rows = [r for r in rows if r.marks == marks]
    if len(rows) != 1:
        raise KeyError(f"{table_id} has no single row for {model!r} (marks {marks!r})")
    return rows[0]


def table(name: str) -> PublishedTable:
    """A published table by id: "Table 5", "5", "table5", "A1", "tableA2" (case-insensitive)."""
    key = re.sub(r"[\s_]+", "", name.lower()).removeprefix("table")
    for t in TABLES:
        if t.id.lower().removeprefix("table ") == key:
            return t
    known = ", ".join(t.id for t in TABLES)
    raise RexbenchError(f"unknown paper table {name!r}; known: {known}")


def entries(name: str) -> tuple[PublishedEntry, ...]:
    """Every published row for a model (any name the registry resolves), in table order."""
    canonical = MODELS.canonical(name)
    return tuple(e for e in ENTRIES if e.model == canonical)


def published(name: str) -> PublishedEntry | None:
    """The model's headline row: Table 5, else A1, else A2, else Table 4 (its last, best-trained row).

    None if the paper has no numbers for the model (e.g. mobilenet_v3_small, rexnet_x1.75).
    """
    rows = entries(name)
    for table_id in _PRIORITY:
        found = [e for e in rows if e.table == table_id]
        if found:
            return found[-1]
    return None
